"""The README's tables of node parameters, topics and services are what the nodes' code declares.

`scripts/readme_tables.py` renders them from each node's `PARAMETERS` table and from its
`create_publisher` / `create_subscription` / `create_service` / `create_client` / `ActionServer`
calls. When a node gains, loses or changes a parameter or an interface, these tests fail until
`python scripts/readme_tables.py` has rewritten the README.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "readme_tables.py"

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("readme_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_readme_tables_match_the_nodes_code() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr + "\nrun: python scripts/readme_tables.py"


def test_every_declared_parameter_is_in_the_readme(tables) -> None:
    readme = (ROOT / "README.md").read_text()
    for node in tables.NODES:
        body = tables.blocks()[f"{node.name} parameters"]
        assert body in readme
        for param in importlib.import_module(node.module).PARAMETERS:
            assert f"| `{param.name}` | " in body, f"{node.name}.{param.name} missing from its table"


def test_every_service_and_action_is_in_the_readme(tables) -> None:
    """The source scan finds the interfaces the nodes are known to offer (a scan that found
    nothing would make an empty table that always matches)."""
    found = {node.name: tables.interface_table(node) for node in tables.NODES}
    for name in ("`~/get_action_chunk`", "`~/mark_success`", "`~/execute_instruction`", "`~/action_chunk`"):
        assert name in found["vla_policy"]
    for name in ("`~/stop`", "`~/resume`", "`policy_service`", "`JointTrajectory`"):
        assert name in found["vla_executor"]
    for name in ("`~/start_episode`", "`~/stop_episode`", "`~/discard_episode`"):
        assert name in found["vla_recorder"]


def test_a_changed_parameter_makes_the_check_fail(tables, monkeypatch) -> None:
    readme = (ROOT / "README.md").read_text()
    assert tables.render(readme, tables.blocks()) == readme
    module = importlib.import_module(tables.NODES[1].module)
    param = module.PARAMETERS[0]
    changed = type(param)(param.name, param.default, param.description + " (changed)", param.check)
    monkeypatch.setattr(module, "PARAMETERS", (changed, *module.PARAMETERS[1:]))
    assert tables.render(readme, tables.blocks()) != readme


def test_every_listed_computed_name_is_still_in_the_code(tables) -> None:
    """A COMPUTED_NAMES or COMPUTED_TYPES entry whose expression left the code is stale text."""
    used = set()
    for source in {source for node in tables.NODES for source in node.sources}:
        for call in ast.walk(ast.parse((tables.PACKAGE / source).read_text())):
            if isinstance(call, ast.Call) and tables._call_name(call) in tables.KINDS:
                _, type_index, name_index = tables.KINDS[tables._call_name(call)]
                used |= {(source, ast.unparse(arg)) for arg in call.args[type_index:name_index + 1]}
    for key in [*tables.COMPUTED_NAMES, *tables.COMPUTED_TYPES]:
        assert key[:2] in used, f"{key} names an expression no longer in the node's code"
