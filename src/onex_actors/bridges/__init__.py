"""Bridges: adapters turning a foreign client (Kafka, in-process bus) into our ``Bus`` port."""
