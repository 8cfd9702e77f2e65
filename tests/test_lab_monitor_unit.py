"""The health monitor's detection time (woolab/monitor.py): a node counts as failed once it has
been unhealthy for the profile's detection time, measured from when the first failed check was
asked. A hung server answers a check only when the check's own timeout ends, so measuring from
the failed answer would add that timeout to every detection of a hang. The checks are stood in
for by functions that take as long as a check of a hung server; the real hang is
tests/test_lab_cluster.py's."""
import time
import types

from woolab.monitor import HealthMonitor
from woolab.timing import TimingProfile

CHECK_SECONDS = 0.3  # a check of a hung node: no answer until its timeout
DETECTION = 0.5


def monitor() -> types.SimpleNamespace:
    """What `HealthMonitor._detected` reads: the incidents so far and the timing profile."""
    timing = TimingProfile(db_detection_seconds=DETECTION)
    return types.SimpleNamespace(_since={}, _limit={}, _checked=set(),
                                 parts=types.SimpleNamespace(timing=timing))


def hung_check() -> bool:
    time.sleep(CHECK_SECONDS)  # the check's timeout running out
    return False


def test_a_hang_is_detected_once_the_detection_time_passed_since_the_first_check_was_asked():
    state = monitor()
    asked = time.monotonic()
    assert not HealthMonitor._detected(state, "n", hung_check, "db_detection_seconds")
    assert HealthMonitor._detected(state, "n", hung_check, "db_detection_seconds")
    # two checks of 0.3 s: 0.6 s since the first was asked (>= 0.5), 0.3 s since it failed (< 0.5)
    assert state._since["n"] - asked < 0.05


def test_a_healthy_answer_ends_the_incident_and_the_next_one_starts_afresh():
    state = monitor()
    assert not HealthMonitor._detected(state, "n", hung_check, "db_detection_seconds")
    assert not HealthMonitor._detected(state, "n", lambda: True, "db_detection_seconds")
    assert "n" not in state._since
    assert not HealthMonitor._detected(state, "n", lambda: False, "db_detection_seconds")


def test_a_node_left_unchecked_for_a_pass_loses_its_incident():
    """A replica deleted while failing, then created again under the same name, must not be
    taken for failed at its first unhealthy check."""
    state = monitor()
    assert not HealthMonitor._detected(state, "shop-cache-003", lambda: False, "db_detection_seconds")
    state._checked = set()  # the next pass: the node is gone (or not available), so not checked
    HealthMonitor._forget_unchecked(state)
    assert "shop-cache-003" not in state._since and "shop-cache-003" not in state._limit
    time.sleep(DETECTION)
    assert not HealthMonitor._detected(state, "shop-cache-003", lambda: False, "db_detection_seconds")
