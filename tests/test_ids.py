from hpc import diff, flatten, run_id


def test_key_order_and_excluded_fields_do_not_change_the_id():
    a = {"width": 64, "model": {"depth": 2, "act": "tanh"}, "seed": 0}
    b = {"seed": 0, "model": {"act": "tanh", "depth": 2}, "width": 64}
    c = {**a, "cluster": {"partition": "debug"}, "results_root": "/x", "force": True}
    assert run_id(a) == run_id(b) == run_id(c)
    assert run_id(a) != run_id({**a, "seed": 1})
    assert len(run_id(a)) == 12


def test_flatten_and_diff():
    runs = [{"m": {"w": 32, "d": 2}, "s": 0}, {"m": {"w": 64, "d": 2}, "s": 0}, {"m": {"w": 64, "d": 2}, "s": 1}]
    assert flatten(runs[0]) == {"m.w": 32, "m.d": 2, "s": 0}
    assert diff(runs) == {"m.w": [32, 64, 64], "s": [0, 0, 1]}
    assert diff([{"a": 1}, {"b": 2}]) == {"a": [1, None], "b": [None, 2]}
