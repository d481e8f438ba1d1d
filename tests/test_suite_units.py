"""The suite runs on every core (pytest-xdist, conftest.py): what a test shares with others is made once, in one
worker, and the README demo's unit goes first. Checked on this session's own collection."""
import os

from conftest import CHEAP_FIXTURES, SHARED_RUNS, work_units


def shared_fixtures(item):
    defs = item._fixtureinfo.name2fixturedefs
    return {f"{defs[name][-1].baseid}::{name}" for name in item.fixturenames
            if name in defs and defs[name][-1].scope != "function" and name not in CHEAP_FIXTURES}


def test_every_shared_fixture_is_made_by_one_worker(request):
    items = request.session.items
    units = work_units(items)
    users = {}
    for item in items:
        for fixture in shared_fixtures(item):
            users.setdefault(fixture, set()).add(units[item.nodeid])
    spread = {fixture: groups for fixture, groups in users.items() if len(groups) > 1}
    assert not spread, spread
    demo = [item.nodeid for item in items if "librispeech_demo" in item.fixturenames]
    assert {units[node] for node in demo} <= {"librispeech_demo"}
    # a test that shares nothing is its own unit: the workers can balance the rest
    alone = [item for item in items if not shared_fixtures(item)]
    assert alone and all(units[item.nodeid] == item.nodeid for item in alone)


def test_the_shared_runs_come_first(request):
    """The demo's unit is the longest (about 10 minutes): it starts first, while the other workers take the rest."""
    units = [work_units(request.session.items)[item.nodeid] for item in request.session.items]
    shared = [unit in SHARED_RUNS for unit in units]
    assert shared == sorted(shared, reverse=True)


def test_a_worker_computes_with_its_share_of_the_cores():
    """``OMP_NUM_THREADS=max(1, cores // workers)`` in each worker unless the user set it (conftest.pytest_configure)."""
    from conftest import USER_OMP_NUM_THREADS, _usable_cores

    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if USER_OMP_NUM_THREADS:
        assert os.environ["OMP_NUM_THREADS"] == USER_OMP_NUM_THREADS
    elif workers:
        share = max(1, _usable_cores() // int(workers))
        assert os.environ["OMP_NUM_THREADS"] == str(share)
