"""The Kubernetes manifests render (kustomize) and every object is valid against the schemas."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = sorted((REPO / "deploy" / "k8s" / "overlays").iterdir())
KUBERNETES_VERSION = "1.32"

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl renders the kustomizations; not installed"
)


def _render(overlay: Path) -> list[dict[str, Any]]:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(overlay)],  # no flag: as a Kubernetes user renders it
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS, ids=[o.name for o in OVERLAYS])
def test_each_overlay_renders_valid_objects(overlay: Path) -> None:
    import kubernetes_validate

    objects = _render(overlay)
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    kinds = sorted(obj["kind"] for obj in objects)
    assert kinds == ["ConfigMap", "ConfigMap", "ConfigMap", "Deployment", "PodDisruptionBudget"]


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS, ids=[o.name for o in OVERLAYS])
def test_the_deployment_runs_its_runtime_with_probes_that_fit_the_drain(overlay: Path) -> None:
    objects = {obj["kind"]: obj for obj in _render(overlay)}
    pod = objects["Deployment"]["spec"]["template"]
    (host,) = pod["spec"]["containers"]
    env = {e["name"]: e for e in host["env"]}
    assert env["ONEX_RUNTIME"]["value"] == overlay.name
    maps = {obj["metadata"]["name"]: obj for obj in _render(overlay) if obj["kind"] == "ConfigMap"}
    mounted = {
        v["name"]: v["configMap"]["name"] for v in pod["spec"]["volumes"] if "configMap" in v
    }
    runtime_file = f"{overlay.name}.yaml"
    assert runtime_file in maps[mounted["contracts-runtime"]]["data"]
    assert "--listen=0.0.0.0:9100" in host["args"]
    assert host["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert host["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    # secrets reach the host through the variables it reads, never through the ConfigMaps
    assert env["ONEX_KAFKA__SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "onex-secrets"
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "onex-secrets"
    config = load_hybrid()
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    pre_stop = host["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert grace > pre_stop + config["shutdown_timeout_s"], "the drain would be cut short"
    pdb = objects["PodDisruptionBudget"]["spec"]
    assert pdb["selector"] == objects["Deployment"]["spec"]["selector"]


def test_the_contracts_kustomization_lists_every_contract_of_the_tree() -> None:
    kustomization = yaml.safe_load((REPO / "contracts" / "kustomization.yaml").read_text())
    listed = {
        (generator["name"], file)
        for generator in kustomization["configMapGenerator"]
        for file in generator["files"]
    }
    in_tree = {
        (f"onex-contracts-{'nodes' if path.parent.name == 'nodes' else 'runtime'}", file)
        for path in (REPO / "contracts").glob("*/*.yaml")
        for file in [f"{path.parent.name}/{path.name}"]
    }
    assert listed == in_tree


def load_hybrid() -> dict[str, Any]:
    """The hybrid config the pods run with, with the host's default drain limit."""
    from onex_actors.app import load_config

    config = load_config(REPO / "config" / "hybrid.yaml")
    return {"shutdown_timeout_s": config.shutdown_timeout_s}
