"""Call trees of Android method traces: enter/exit events replayed into nodes.

Android SDKs trace method entries and exits instead of sampling stacks, so each entered
method is a node that lasts until its exit.  vroom's rules: only the thread named
``main``, at most 128 frames deep, wall-clock times repaired where the clock ran
backwards, unknown method ids shown as ``unknown``, and open methods closed at the last
timestamp.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from profd.analysis.calltree import CallTree, sample_call_trees
from profd.analysis.frames import Frame, FrameFacts, path_step

MAX_STACK_DEPTH = 128
# Android nodes count "samples" as 10 ms slices, to be comparable with sampled profiles.
SAMPLE_PERIOD_NS = 10_000_000
_ONE_SECOND_NS = 1_000_000_000

_UNKNOWN = {"class_name": "unknown", "name": "unknown", "id": -1}


def method_frame(method: dict[str, Any]) -> Frame:
    """The frame a method stands for: its class's package, and its qualified name."""
    class_name = method.get("class_name") or ""
    name = method.get("name") or ""
    signature = method.get("signature") or ""
    if not class_name:
        function = name  # React Native JS frames carry no class
    elif name == "<init>":
        function = class_name + signature
    else:
        function = f"{class_name}.{name}{signature}"
    return {
        "function": function,
        # A class outside any package (obfuscated "s8") is its own package.
        "package": class_name.rpartition(".")[0] or class_name,
        "in_app": method.get("in_app"),
        "platform": "android",
        "data": method.get("data"),
    }


def event_time_ns(time: dict[str, Any], clock: str, start_time: int) -> int:
    """An event's time: global clock relative to the trace start, else wall (or CPU) time."""
    if clock == "Global":
        return _duration_ns(_field(time, "Global")) - start_time
    return _duration_ns(_field(_field(time, "Monotonic") or {}, "Cpu" if clock == "Cpu" else "Wall"))


def _field(value: dict[str, Any], name: str) -> Any:
    """Producers disagree on the case of these keys ("Monotonic", "global", "wall")."""
    found = value.get(name)
    if found is None:
        found = value.get(name.lower())
        if found is None:
            lowered = name.lower()
            found = next((v for k, v in value.items() if k.lower() == lowered), None)
    return found


def _duration_ns(value: Any) -> int:
    if not value:
        return 0
    return int(value.get("secs") or 0) * _ONE_SECOND_NS + int(value.get("nanos") or 0)


# vroom builds no call trees for transaction profiles longer than this.
MAX_DURATION_FOR_CALL_TREES_NS = 15 * _ONE_SECOND_NS


def android_profile_call_trees(profile: dict[str, Any], min_depth: int = 1) -> list[CallTree]:
    """A legacy Android transaction profile; React Native ones are analysed by their JS half."""
    if int(profile.get("duration_ns") or 0) > MAX_DURATION_FOR_CALL_TREES_NS:
        return []
    js_profile = profile.get("js_profile")
    if js_profile and isinstance(js_profile.get("profile"), dict) and js_profile["profile"].get("samples"):
        trace = js_profile["profile"]
        thread = str(trace["samples"][0]["thread_id"])
        return sample_call_trees(trace, {thread}, "elapsed_since_start_ns", "javascript", min_depth)
    return android_call_trees(profile, 0, min_depth)


def android_call_trees(profile: dict[str, Any], offset_ns: int = 0, min_depth: int = 1) -> list[CallTree]:
    trace = profile["profile"]
    main = [t["id"] for t in trace.get("threads") or [] if t.get("name") == "main"]
    if not main:
        return []
    thread_id = main[0]
    clock = trace.get("clock") or "Dual"
    start_time = int(trace.get("start_time") or 0)
    events = [e for e in trace.get("events") or [] if e.get("thread_id") == thread_id]
    times = [event_time_ns(e.get("time") or {}, clock, start_time) for e in events]
    if clock not in ("Global", "Cpu"):
        times = repair_clock(times)
    methods = {m["id"]: m for m in trace.get("methods") or []}
    frames: list[Frame] = []
    frame_of_method: dict[int, int] = {}

    def frame_index(method_id: int) -> int:
        index = frame_of_method.get(method_id)
        if index is None:
            index = frame_of_method[method_id] = len(frames)
            frames.append(method_frame(methods.get(method_id, _UNKNOWN)))
        return index

    parent: list[int] = []
    frame: list[int] = []
    start: list[int] = []
    end: list[int] = []
    open_nodes: list[tuple[int, int]] = []  # (node, method id)
    entered: dict[int, int] = {}
    depth = 0
    for event, time in zip(events, times, strict=True):
        time += offset_ns
        method_id = int(event.get("method_id") or 0)
        if event.get("action") == "Enter":
            depth += 1
            if depth > MAX_STACK_DEPTH:
                continue
            parent.append(open_nodes[-1][0] if open_nodes else -1)
            frame.append(frame_index(method_id))
            start.append(time)
            end.append(time)
            open_nodes.append((len(frame) - 1, method_id))
            entered[method_id] = entered.get(method_id, 0) + 1
            continue
        depth -= 1
        if depth >= MAX_STACK_DEPTH or not open_nodes:
            continue
        if entered.get(method_id, 0) <= 0 and open_nodes[-1][1] != method_id:
            continue  # an exit whose enter was never seen
        while open_nodes:
            node, node_method = open_nodes.pop()
            end[node] = time
            entered[node_method] -= 1
            if node_method == method_id:
                break
    last = max(end, default=0)
    for node, _ in open_nodes:
        end[node] = last
    if not frame:
        return []
    return [_tree(str(thread_id), frames, parent, frame, start, end, min_depth)]


def repair_clock(times: list[int]) -> list[int]:
    """Wall clocks can jump back; from the first backward step on, keep time monotonic."""
    repaired: list[int] = []
    latest = maximum = None
    correcting = False
    for time in times:
        if latest is None or maximum is None:
            latest = maximum = time
            repaired.append(time)
            continue
        if not correcting and time < latest:
            correcting = True
        if correcting:
            new = maximum + _ONE_SECOND_NS if time < maximum and time < latest else maximum + (time - latest)
            latest, maximum = time, max(maximum, new)
            repaired.append(new)
        else:
            latest, maximum = time, max(maximum, time)
            repaired.append(time)
    return repaired


def _tree(
    thread_id: str,
    frames: list[Frame],
    parent: list[int],
    frame: list[int],
    start: list[int],
    end: list[int],
    min_depth: int,
) -> CallTree:
    count = len(frame)
    facts = FrameFacts.of(frames, "android")
    duration = [max(0, e - s) for s, e in zip(start, end, strict=True)]
    depth = [0] * count
    path = [0] * count
    hashes = facts.identity_hash
    for node in range(count):
        above = parent[node]
        if above >= 0:
            depth[node] = depth[above] + 1
        path[node] = path_step(path[above] if above >= 0 else 0, hashes[frame[node]])
    application = facts.application[frame].tolist()
    aggregatable = facts.aggregatable[frame].tolist()
    counted = [application[n] and aggregatable[n] and depth[n] >= min_depth for n in range(count)]
    # Children come after their parent, so walking backwards visits children first.
    children_total = [0] * count
    children_application = [0] * count
    self_time = [0] * count
    for node in range(count - 1, -1, -1):
        below_application = min(children_application[node], duration[node])
        if application[node]:
            self_time[node] = duration[node] - below_application
        else:
            self_time[node] = max(0, duration[node] - children_total[node])
        returned = below_application + (self_time[node] if counted[node] else 0)
        if parent[node] >= 0:
            children_total[parent[node]] += duration[node]
            children_application[parent[node]] += returned
    return CallTree(
        thread_id=thread_id,
        facts=facts,
        frame=np.asarray(frame, dtype=np.int64),
        parent=np.asarray(parent, dtype=np.int64),
        depth=np.asarray(depth, dtype=np.int64),
        duration_ns=np.asarray(duration, dtype=np.int64),
        self_time_ns=np.asarray(self_time, dtype=np.int64),
        sample_count=np.asarray([math.ceil(d / SAMPLE_PERIOD_NS) for d in duration], dtype=np.int64),
        path=np.asarray(path, dtype=np.uint64).view(np.int64),
    )
