-- The demo schema behind contracts/nodes/query-user.yaml. Safe to run again.
create table if not exists users (
    id integer primary key,
    name text not null,
    email text not null unique,
    created_at timestamptz not null default now()
);
insert into users (id, name, email) values
    (1, 'Ada Lovelace', 'ada@example.com'),
    (2, 'Alan Turing', 'alan@example.com'),
    (3, 'Grace Hopper', 'grace@example.com')
on conflict (id) do nothing;
