"""What a lowered program is made of: delegated share of operators, bytes per method.

* :func:`delegation_summary` reads ExecuTorch's delegation info from the lowered edge program
  (``executorch.devtools.backend_debug.get_delegation_info``), per method: operators inside
  backend partitions vs operators left to the portable CPU kernels, ``getitem`` excluded (it is
  tuple unpacking, not compute).
* :func:`pte_breakdown` reads a ``.pte`` file: per method the bytes of its delegate payloads, of
  its non-delegated constants and of the named weight blobs only it uses; blobs used by several
  methods (``encode_image`` and ``track`` share the backbone) are counted once, in ``shared``;
  and the operators each method runs outside any delegate.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

IGNORED_OPERATORS = ("getitem",)


@dataclass
class MethodDelegation:
    """Delegation of one method.

    Attributes:
        delegated: operators inside backend partitions.
        cpu: operators left on the portable CPU path, by name (``getitem`` excluded).
    """

    delegated: int
    cpu: dict[str, int] = field(default_factory=dict)

    @property
    def cpu_total(self) -> int:
        return sum(self.cpu.values())

    @property
    def share(self) -> float:
        total = self.delegated + self.cpu_total
        return self.delegated / total if total else 1.0


def delegation_summary(edge_manager: Any, methods: list[str]) -> dict[str, MethodDelegation]:
    """Per-method delegation of a lowered ``EdgeProgramManager``."""
    from executorch.devtools.backend_debug import get_delegation_info

    summary = {}
    for method in methods:
        info = get_delegation_info(edge_manager.exported_program(method).graph_module)
        delegated, cpu = 0, {}
        for name, stats in info.delegation_by_operator.items():
            if name in IGNORED_OPERATORS:
                continue
            delegated += stats.delegated
            if stats.non_delegated:
                cpu[name] = stats.non_delegated
        summary[method] = MethodDelegation(delegated, dict(sorted(cpu.items(), key=lambda item: -item[1])))
    return summary


def overall_share(summary: dict[str, MethodDelegation]) -> float:
    """Delegated share over all methods together."""
    delegated = sum(item.delegated for item in summary.values())
    total = delegated + sum(item.cpu_total for item in summary.values())
    return delegated / total if total else 1.0


def delegation_to_json(summary: dict[str, MethodDelegation]) -> dict[str, Any]:
    out = {name: {**asdict(item), "share": item.share} for name, item in summary.items()}
    out["overall_share"] = overall_share(summary)
    return out


@dataclass
class PteBreakdown:
    """Bytes of a ``.pte`` by method.

    Attributes:
        file_bytes: the file's size.
        methods: per method ``{"delegates", "constants", "own_weights", "total"}`` bytes, where
            ``constants`` (CPU-side constant tensors) and ``own_weights`` (named weight blobs of
            the delegates) are those no other method uses.
        shared: bytes of named weight blobs and CPU constants used by more than one method, and
            by which (each counted once: methods' totals + shared + flatbuffer overhead = file).
        cpu_operators: per method, operators executed outside delegates (``{name: count}``).
        constant_methods: names of the metadata methods (no instructions).
    """

    file_bytes: int
    methods: dict[str, dict[str, int]]
    shared: dict[str, int]
    cpu_operators: dict[str, dict[str, int]]
    constant_methods: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _buffer_size(buffer: Any) -> int:
    for attribute in ("buffer", "data"):
        value = getattr(buffer, attribute, None)
        if value is not None:
            return len(value)
    return len(buffer)


def pte_breakdown(path: str | Path) -> PteBreakdown:
    """Parse a ``.pte`` and attribute its bytes and CPU operators to methods."""
    from executorch.exir._serialize._program import deserialize_pte_binary
    from executorch.exir.schema import DelegateCall, KernelCall, Tensor

    data = Path(path).read_bytes()
    pte = deserialize_pte_binary(data)
    program = pte.program
    named: dict[str, int] = {}
    if pte.named_data is not None:
        for key, entry in pte.named_data.pte_data.items():
            named[key] = _buffer_size(pte.named_data.buffers[entry.buffer_index])
    users: dict[str, list[str]] = {key: [] for key in named}
    # CPU-side constants are deduplicated by the serializer: decode and track point at the same
    # buffers, so they are attributed like the named weights (once, to the methods sharing them).
    buffer_users: dict[int, list[str]] = {}
    methods: dict[str, dict[str, int]] = {}
    cpu_operators: dict[str, dict[str, int]] = {}
    constant_methods = []
    for plan in program.execution_plan:
        instructions = [instruction for chain in plan.chains for instruction in chain.instructions]
        if not instructions:
            constant_methods.append(plan.name)
            continue
        blobs = [program.backend_delegate_data[d.processed.index].data for d in plan.delegates]
        for key in named:
            token = key.encode()
            if any(token in blob for blob in blobs):
                users[key].append(plan.name)
        for index in {
            value.val.data_buffer_idx
            for value in plan.values
            if isinstance(value.val, Tensor) and value.val.data_buffer_idx > 0
        }:
            buffer_users.setdefault(index, []).append(plan.name)
        operators = Counter(
            f"{plan.operators[i.instr_args.op_index].name}"
            for i in instructions
            if isinstance(i.instr_args, KernelCall)
        )
        calls = sum(isinstance(i.instr_args, DelegateCall) for i in instructions)
        methods[plan.name] = {
            "delegates": sum(len(b) for b in blobs),
            "constants": 0,
            "delegate_calls": calls,
        }
        cpu_operators[plan.name] = dict(operators.most_common())
    shared: dict[str, int] = {}
    for index, names in buffer_users.items():
        size = len(program.constant_buffer[index].storage)
        if len(names) == 1:
            methods[names[0]]["constants"] += size
        else:
            label = " & ".join(sorted(names))
            shared[label] = shared.get(label, 0) + size
    for key, names in users.items():
        if len(names) == 1:
            methods[names[0]]["own_weights"] = methods[names[0]].get("own_weights", 0) + named[key]
        elif names:
            label = " & ".join(sorted(names))
            shared[label] = shared.get(label, 0) + named[key]
    for item in methods.values():
        item.setdefault("own_weights", 0)
        item["total"] = item["delegates"] + item["constants"] + item["own_weights"]
    return PteBreakdown(len(data), methods, shared, cpu_operators, constant_methods)


def program_bytes(breakdown: PteBreakdown, methods: list[str] | tuple[str, ...]) -> int:
    """Bytes of a program holding only ``methods``, read from a larger program's breakdown.

    The file's bytes less what only the other methods use (their own delegates, constants and
    weight blobs, and blobs shared only among them); the flatbuffer and metadata methods stay.
    On the tiny preset this matched a 3-method export within 6 KB (docs/EXPORT.md "Size").

    Raises:
        KeyError: a method the program does not have.
    """
    missing = [name for name in methods if name not in breakdown.methods]
    if missing:
        raise KeyError(
            f"the program has no method {', '.join(missing)}; it has {', '.join(breakdown.methods)}"
        )
    wanted = set(methods)
    dropped = sum(item["total"] for name, item in breakdown.methods.items() if name not in wanted)
    dropped += sum(size for label, size in breakdown.shared.items() if not wanted & set(label.split(" & ")))
    return breakdown.file_bytes - dropped
