"""The README's tables of the nodes' parameters, topics and services, generated from the nodes' code.

    python scripts/readme_tables.py          # rewrite the tables in README.md between their markers
    python scripts/readme_tables.py --check  # exit 1, naming the tables, when README.md differs

Parameters come from each node's own `PARAMETERS` table (vla_policy_node.parameters.Param: name,
default, description), imported, beside the value the node's parameter file sets where it sets
one. Topics, services and actions come from the node modules' source: every `create_publisher`,
`create_subscription`, `create_service`, `create_client` and `ActionServer` call, with its message
type and name. A name the code computes (a profile's topic, a parameter) is shown by the parameter
or profile field it comes from, as listed in COMPUTED_NAMES; one not listed there is shown as its
source expression, so a new interface still appears in the table. Run it in the workspace
environment (`source env.sh`), where rclpy and vla_msgs import.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

from vla_core.config_files import node_parameters

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PACKAGE = ROOT / "src" / "vla_policy_node" / "vla_policy_node"


@dataclass(frozen=True)
class NodeDoc:
    name: str  # the node's default name
    module: str  # module holding PARAMETERS
    sources: tuple[str, ...]  # files whose ROS entities belong to this node
    params_file: str  # the parameter file the launch file and `vla up` / `vla record` pass


NODES = (
    NodeDoc("vla_policy", "vla_policy_node.policy_node", ("policy_node.py",), "config/policy.yaml"),
    NodeDoc("vla_executor", "vla_policy_node.executor_node", ("executor_node.py", "command_interfaces.py"),
            "config/policy.yaml"),
    NodeDoc("vla_recorder", "vla_policy_node.recorder_node", ("recorder_node.py",), "config/record.yaml"),
)

# Names the code computes, keyed by (source file, expression): what the reader sets to choose them.
COMPUTED_NAMES = {
    ("policy_node.py", "joint_topic"): "`joint_state_topic`, else the profile's",
    ("policy_node.py", "reader.topic + ('/compressed' if compressed else '')"):
        "each camera of the profile (`cameras`); `<topic>/compressed` with `image_transport:=compressed`",
    ("executor_node.py", "self.joint_reader.topic"): "`joint_state_topic`, else the profile's",
    ("executor_node.py", "self.resolve_service_name(p['policy_service'])"): "`policy_service`",
    ("command_interfaces.py", "gripper_topic"): "`gripper_topic` (only when set)",
    ("command_interfaces.py", "topic"): "`command_topic`, else the profile's (`command_interface:=joint_trajectory`)",
    ("command_interfaces.py", "topic", "PoseStamped"):
        "`servo_pose_topics`, one per arm (`command_interface:=servo`)",
    ("recorder_node.py", "topic"):
        "each recorded topic: the profile's cameras, joint states and command topic, and `extra_topics`",
}

# Message types the code computes, keyed the same way.
COMPUTED_TYPES = {("recorder_node.py", "cls"): "its publishers' type"}

KINDS = {  # call name -> (kind, index of the type argument, index of the name argument)
    "create_publisher": ("publishes", 0, 1),
    "create_lifecycle_publisher": ("publishes", 0, 1),
    "create_subscription": ("subscribes", 0, 1),
    "create_service": ("service", 0, 1),
    "create_client": ("calls service", 0, 1),
    "ActionServer": ("action", 1, 2),
}


KIND_ORDER = ("subscribes", "publishes", "service", "action", "calls service")


def _type_name(source: str, expr: ast.expr) -> str:
    if isinstance(expr, ast.IfExp):  # e.g. `CompressedImage if compressed else Image`
        return f"{_type_name(source, expr.body)} or {_type_name(source, expr.orelse)}"
    text = ast.unparse(expr)
    return COMPUTED_TYPES.get((source, text)) or f"`{text}`"


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _entity_name(source: str, expr: ast.expr, msgtype: str) -> str:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return f"`{expr.value}`"
    if (isinstance(expr, ast.Call) and _call_name(expr) == "name" and expr.args
            and isinstance(expr.args[0], ast.Constant)):
        return f"`~/{expr.args[0].value}`"  # SideExecutor.name: the name `~/<relative>` would give
    text = ast.unparse(expr)
    return COMPUTED_NAMES.get((source, text, msgtype)) or COMPUTED_NAMES.get((source, text)) or f"`{text}`"


def interfaces(node: NodeDoc) -> list[tuple[str, str, str]]:
    """(kind, name, type) of every ROS entity the node's source files create, in source order."""
    rows = []
    for source in node.sources:
        tree = ast.parse((PACKAGE / source).read_text())
        calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call) and _call_name(n) in KINDS),
                       key=lambda n: (n.lineno, n.col_offset))
        for call in calls:
            kind, type_index, name_index = KINDS[_call_name(call)]
            if len(call.args) <= name_index:
                continue
            msgtype = _type_name(source, call.args[type_index])
            row = (kind, _entity_name(source, call.args[name_index], msgtype.strip("`")), msgtype)
            if row not in rows:
                rows.append(row)
    return sorted(rows, key=lambda row: KIND_ORDER.index(row[0]))


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, str):
        return f'`"{value}"`' if value == "" else f"`{value}`"
    if isinstance(value, (list, tuple)):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    return f"`{value}`"


def _cell(text: str, html: bool = False) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text.replace("<", "&lt;").replace(">", "&gt;") if html else text


def parameter_table(node: NodeDoc) -> str:
    table = importlib.import_module(node.module).PARAMETERS
    in_file = node_parameters(ROOT / node.params_file, node.name)
    lines = [f"| parameter | default | `{node.params_file}` | description |", "| --- | --- | --- | --- |"]
    for param in table:
        set_value = _value(in_file[param.name]) if param.name in in_file else ""
        if set_value == _value(param.default):
            set_value = "same"
        lines.append(f"| `{param.name}` | {_value(param.default)} | {set_value} | {_cell(param.description, html=True)} |")
    return "\n".join(lines)


def interface_table(node: NodeDoc) -> str:
    lines = ["| kind | name | type |", "| --- | --- | --- |"]
    lines += [f"| {kind} | {_cell(name)} | {msgtype} |" for kind, name, msgtype in interfaces(node)]
    return "\n".join(lines)


def blocks() -> dict[str, str]:
    """Marker name -> generated Markdown."""
    out = {}
    for node in NODES:
        out[f"{node.name} interfaces"] = interface_table(node)
        out[f"{node.name} parameters"] = parameter_table(node)
    return out


def _markers(name: str) -> tuple[str, str]:
    return (f"<!-- generated by scripts/readme_tables.py: {name} -->", f"<!-- end of {name} -->")


def render(text: str, generated: dict[str, str]) -> str:
    for name, body in generated.items():
        begin, end = _markers(name)
        start, stop = text.find(begin), text.find(end)
        if start < 0 or stop < start:
            raise SystemExit(f"README.md has no '{begin}' ... '{end}' block")
        text = text[:start + len(begin)] + "\n" + body + "\n" + text[stop:]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md's tables differ")
    args = parser.parse_args(argv)
    text = README.read_text()
    generated = blocks()
    new = render(text, generated)
    if args.check:
        stale = [name for name, body in generated.items() if render(text, {name: body}) != text]
        if stale:
            print(f"README.md's tables differ from the nodes' code ({', '.join(stale)}): "
                  "run python scripts/readme_tables.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
