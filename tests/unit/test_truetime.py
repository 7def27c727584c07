"""TrueTime: the interval arithmetic, the epsilon settings, the skew check at start, and the
simulator's control of every node's offset, drift and epsilon."""

from __future__ import annotations

from random import Random

import pytest
from prometheus_client import CollectorRegistry

from distlab.apps.kv import KVStateMachine
from distlab.cli.common import UsageError
from distlab.cli.main import main
from distlab.cli.up import parse_clock_skews
from distlab.core.ids import NodeId
from distlab.core.truetime import (
    DEFAULT_EPSILON,
    NS_PER_MS,
    FixedEpsilon,
    SawtoothEpsilon,
    TrueTime,
    TTInterval,
    parse_epsilon,
)
from distlab.runtime.config import ConfigError, load_node_config
from distlab.sim import harness
from distlab.sim.world import NodeSettings, World
from distlab.telemetry.truetime import TrueTimeCollector

MS = NS_PER_MS
T0 = 1_767_225_600 * 1_000_000_000  # any wall time, in ns


class Readings:
    """Clocks a test sets by hand."""

    def __init__(self) -> None:
        self.wall = T0
        self.monotonic = 0.0


def truetime(epsilon: FixedEpsilon | SawtoothEpsilon) -> tuple[TrueTime, Readings]:
    readings = Readings()
    return TrueTime(lambda: readings.wall, lambda: readings.monotonic, epsilon), readings


def test_now_is_the_reading_widened_by_epsilon_on_both_sides() -> None:
    tt, readings = truetime(FixedEpsilon(4))
    assert tt.now() == TTInterval(T0 - 4 * MS, T0 + 4 * MS)
    assert tt.now().width == 8 * MS
    readings.wall += 10 * MS
    assert tt.now().contains(T0 + 10 * MS) and not tt.now().contains(T0 + 15 * MS)


def test_after_and_before_hold_only_once_the_whole_interval_is_past_or_ahead() -> None:
    tt, readings = truetime(FixedEpsilon(4))
    t = T0
    assert not tt.after(t) and not tt.before(t)
    assert tt.before(t + 4 * MS + 1) and not tt.before(t + 4 * MS)
    readings.wall = T0 + 4 * MS
    assert not tt.after(t)  # earliest == t: t may be now
    readings.wall += 1
    assert tt.after(t)


def test_commit_wait_lasts_until_after_holds() -> None:
    tt, readings = truetime(FixedEpsilon(4))
    s = tt.now().latest  # Spanner's commit timestamp: at least TT.now().latest
    wait = tt.now().wait_until_after(s)
    assert wait == 8 * MS + 1  # twice epsilon, the price of the uncertainty
    readings.wall += wait - 1
    assert not tt.after(s)
    readings.wall += 1
    assert tt.after(s) and tt.now().wait_until_after(s) == 0


def test_an_interval_never_runs_backwards() -> None:
    with pytest.raises(ValueError, match="after its latest"):
        TTInterval(2, 1)


def test_the_sawtooth_rises_from_low_to_high_over_each_sync_period() -> None:
    tt, readings = truetime(SawtoothEpsilon())  # Spanner's: 1 to 7 ms over 30 s
    seen = []
    for monotonic in (0.0, 15.0, 29.999, 30.0, 45.0):
        readings.monotonic = monotonic
        seen.append(tt.epsilon_ns() / MS)
    assert seen == pytest.approx([1.0, 4.0, 7.0, 1.0, 4.0], abs=1e-3)
    readings.monotonic = 15.0
    assert tt.now().width == 8 * MS


@pytest.mark.parametrize(("text", "expected"), [
    ("4", FixedEpsilon(4)), ("0.5", FixedEpsilon(0.5)), (" Sawtooth ", SawtoothEpsilon()),
    ("sawtooth:2:10:60", SawtoothEpsilon(2, 10, 60)),
])
def test_epsilon_settings(text: str, expected: object) -> None:
    assert parse_epsilon(text) == expected


@pytest.mark.parametrize("text", ["", "fast", "-1", "sawtooth:1:7", "sawtooth:7:1:30",
                                  "sawtooth:1:7:0"])
def test_bad_epsilon_settings_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="expected a number of milliseconds"):
        parse_epsilon(text)


BASE = {"NODE_ID": "1", "CLUSTER_NODES": "1,2,3"}


def test_the_node_settings_default_to_four_ms_and_no_skew() -> None:
    config = load_node_config(BASE)
    assert config.truetime_epsilon == DEFAULT_EPSILON == FixedEpsilon(4)
    assert config.clock_skew_ms == 0.0
    config = load_node_config({**BASE, "TRUETIME_EPSILON_MS": "sawtooth",
                               "CLOCK_SKEW_MS": "-0.5"})
    assert config.truetime_epsilon == SawtoothEpsilon() and config.clock_skew_ms == -0.5


@pytest.mark.parametrize(("env", "problem"), [
    ({"CLOCK_SKEW_MS": "5"}, "CLOCK_SKEW_MS 5 is beyond TRUETIME_EPSILON_MS (4 ms)"),
    ({"CLOCK_SKEW_MS": "-2", "TRUETIME_EPSILON_MS": "sawtooth"},
     "CLOCK_SKEW_MS -2 is beyond TRUETIME_EPSILON_MS (sawtooth 1-7 ms over 30 s)"),
    ({"CLOCK_SKEW_MS": "soon"}, "CLOCK_SKEW_MS: expected a number of milliseconds"),
    ({"CLOCK_SKEW_MS": "nan"}, "CLOCK_SKEW_MS: expected a number of milliseconds"),
    ({"TRUETIME_EPSILON_MS": "x"}, "TRUETIME_EPSILON_MS: expected a number of milliseconds"),
])
def test_a_skew_beyond_epsilon_and_bad_values_are_refused(env: dict[str, str],
                                                          problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        load_node_config({**BASE, **env})


def test_clock_skew_unsafe_allows_a_skew_beyond_epsilon() -> None:
    config = load_node_config({**BASE, "CLOCK_SKEW_MS": "50", "CLOCK_SKEW_UNSAFE": "1"})
    assert config.clock_skew_ms == 50


def test_distlab_node_refuses_the_skew_at_start_with_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in {**BASE, "CLOCK_SKEW_MS": "9"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CLOCK_SKEW_UNSAFE", raising=False)
    assert main(["node"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "CLOCK_SKEW_MS 9 is beyond" in error


def test_up_takes_one_skew_per_node_in_id_order() -> None:
    members = [NodeId(1), NodeId(2), NodeId(3)]
    assert parse_clock_skews("0, 2.5,-1", members) == {1: 0.0, 2: 2.5, 3: -1.0}
    with pytest.raises(UsageError, match="2 offsets for 3 nodes"):
        parse_clock_skews("0,1", members)
    with pytest.raises(UsageError, match="'x' is not a number"):
        parse_clock_skews("0,x,1", members)


def test_the_epsilon_metric_is_read_at_scrape_time() -> None:
    tt, readings = truetime(SawtoothEpsilon())
    registry = CollectorRegistry()
    registry.register(TrueTimeCollector(tt, skew_ns=3 * MS))
    readings.monotonic = 15.0
    assert registry.get_sample_value("distlab_truetime_epsilon_seconds") == pytest.approx(0.004)
    assert registry.get_sample_value("distlab_truetime_clock_skew_seconds") == 0.003


def make_world(settings: list[NodeSettings]) -> World:
    spec = harness.protocol("raft")
    options = spec.draw_options(Random(1))
    return World(seed=1, nodes=len(settings), groups=1,
                 make_engine=lambda world: spec.make_engine(world, options),
                 make_machine=lambda node, group: KVStateMachine(),
                 timing=spec.timing(options), settings=settings)


def test_the_simulator_sets_every_nodes_offset_drift_and_epsilon() -> None:
    world = make_world([
        NodeSettings(),
        NodeSettings(wall_skew_ms=3.0, epsilon=FixedEpsilon(2)),
        NodeSettings(clock_offset=100.0, clock_rate=1.001, epsilon=SawtoothEpsilon()),
    ])
    try:
        one, two, three = (world.nodes[NodeId(n)] for n in (1, 2, 3))
        truth = world.true_time_ns()
        assert one.truetime.now() == TTInterval(truth - 4 * MS, truth + 4 * MS)
        # Three ms fast with an epsilon of two: the interval misses the true time.
        assert two.truetime.now() == TTInterval(truth + 1 * MS, truth + 5 * MS)
        assert not two.truetime.now().contains(truth)
        assert three.clock.monotonic() == pytest.approx(100.0)
        world.run_for(10.0)
        truth = world.true_time_ns()
        assert one.truetime.now().contains(truth)
        # Drift: 0.1% fast for 10 s is 10 ms ahead, beyond the sawtooth's 1-7 ms.
        assert three.clock.wall_error == pytest.approx(0.010)
        assert three.clock.monotonic() == pytest.approx(110.01)
        # 20.01 s into its sync period (110.01 mod 30): 1 + 6 * 20.01 / 30 ms
        assert three.truetime.epsilon_ns() == pytest.approx(5.002 * MS, abs=1000)
        assert three.truetime.now().earliest > truth  # ahead by more than epsilon
        world.set_clock_skew(NodeId(3), 0.0)
        world.set_epsilon(NodeId(2), FixedEpsilon(5))
        truth = world.true_time_ns()
        assert three.clock.wall_error == 0.0 and three.truetime.now().contains(truth)
        assert two.truetime.now() == TTInterval(truth - 2 * MS, truth + 8 * MS)
    finally:
        world.close()
