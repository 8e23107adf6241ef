"""Rule-based keys: hand-computed cases, paper-vs-paper agreement, properties."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recopt.errors import ModelError
from recopt.keys.fixed import fixed_plan, read_shares_csv
from recopt.keys.multiround import RoundSpec, multiround_plan, parse_rounds
from recopt.keys.rules import (
    KEYS,
    KeyInputs,
    key_cascade_rounds,
    key_hybrid,
    key_hybrid_rounds,
    make_plan,
    settle_key,
    settle_plan,
    waterfill,
)
from recopt.keys.shapley import normalise_shapley, shapley_keys, shapley_values

# Members A, B, C consume; D is a pure producer. Steps:
# 0 plenty:           C+ = [1, 2, 0, 0],      P- = [0, 0, 0, 3]
# 1 zero production:  C+ = [1, 1, 1, 0],      P- = 0
# 2 zero consumption: C+ = 0,                 P- = [0, 0, 0, 2]
# 3 scarce:           C+ = [0.5, 2, 3.5, 0],  P- = [0, 0, 0, 3]
C_PLUS = np.array([[[1, 2, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0], [0.5, 2, 3.5, 0]]], float)
P_MINUS = np.array([[[0, 0, 0, 3], [0, 0, 0, 0], [0, 0, 0, 2], [0, 0, 0, 3]]], float)
INVESTMENT = np.array([100.0, 100.0, 200.0, 0.0])

# hand-computed community intake per key (steps 1 and 2 are always 0)
EXPECTED = {
    # equal 3/4 each: step 0 takes [.75, .75, 0, 0]; step 3 takes [.5, .75, .75, 0]
    "ES": ([0.75, 0.75, 0, 0], [0.5, 0.75, 0.75, 0]),
    "KoR1": ([0.75, 0.75, 0, 0], [0.5, 0.75, 0.75, 0]),
    # prorata C+: step 0 [1, 2]; step 3 3*[0.5, 2, 3.5]/6
    "PR": ([1, 2, 0, 0], [0.25, 1.0, 1.75, 0]),
    "KoR2": ([1, 2, 0, 0], [0.25, 1.0, 1.75, 0]),
    # HEP (all, eps = G/4 = 0.75): step 0 round 1 [.75, .75], leftover 1.5 to B's
    # remaining 1.25 -> B full; step 3 round 1 [.5,.75,.75], leftover 1 pro rata of
    # remaining [0, 1.25, 2.75] -> [0, .3125, .6875]
    "HEP": ([1, 2, 0, 0], [0.5, 1.0625, 1.4375, 0]),
    # KoR5 (consumers, eps = 1 at step 3): round 1 [.5, 1, 1], leftover .5 pro rata of
    # remaining [0, 1, 2.5]
    "KoR5": ([1, 2, 0, 0], [0.5, 1 + 0.5 / 3.5, 1 + 0.5 * 2.5 / 3.5, 0]),
    # cascade: A satisfied (0.5), the rest 2.5 split equally between B and C
    "CA": ([1, 2, 0, 0], [0.5, 1.25, 1.25, 0]),
    "KoR6": ([1, 2, 0, 0], [0.5, 1.25, 1.25, 0]),
    # prorata production: only D produces, D needs nothing -> nothing shared
    "KoR3": ([0, 0, 0, 0], [0, 0, 0, 0]),
    # investment shares [.25, .25, .5, 0]: step 0 offers [.75, .75, 1.5] -> [.75, .75, 0]
    "KoR4": ([0.75, 0.75, 0, 0], [0.5, 0.75, 1.5, 0]),
}


@pytest.fixture(scope="module")
def tiny_instance():
    from recopt.generate.synthetic import synthetic_community

    return synthetic_community(5, 96, seed=0)


def inputs():
    return KeyInputs(C_PLUS.copy(), P_MINUS.copy(), member_data={"investment": INVESTMENT})


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_hand_computed(key):
    res = settle_plan(inputs(), make_plan(inputs(), key))
    want = np.zeros((1, 4, 4))
    want[0, 0], want[0, 3] = EXPECTED[key]
    np.testing.assert_allclose(res["comm_in"], want, atol=1e-12)
    # zero-production and zero-consumption steps: nothing shared, all surplus exported
    assert res["surplus"][0, 2] == pytest.approx(2.0)
    assert res["grid_out"][0, 2, 3] == pytest.approx(2.0)
    np.testing.assert_allclose(res["grid_in"][0, 1], C_PLUS[0, 1])


def test_fixed_shares_hand_computed():
    res = settle_plan(inputs(), make_plan(inputs(), "fixed", shares=[0.1, 0.2, 0.3, 0.4]))
    np.testing.assert_allclose(res["comm_in"][0, 3], [0.3, 0.6, 0.9, 0.0])
    np.testing.assert_allclose(res["comm_in"][0, 0], [0.3, 0.6, 0.0, 0.0])
    # surplus 3 - 1.8 = 1.2 credited to the only injector D
    assert res["grid_out"][0, 3, 3] == pytest.approx(1.2)
    with pytest.raises(ModelError, match="sum to"):
        make_plan(inputs(), "fixed", shares=[0.5, 0.5, 0.5, 0.0])
    with pytest.raises(ModelError, match="one value per member"):
        make_plan(inputs(), "fixed", shares=[0.5, 0.5])


def test_guzman_shares_need_14_members():
    with pytest.raises(ModelError):
        make_plan(inputs(), "GS")


def test_equal_among_consumers_excludes_non_consumers():
    plan = make_plan(inputs(), "equal", among="consumers")
    np.testing.assert_allclose(plan.keys[0, 3], [1 / 3, 1 / 3, 1 / 3, 0])
    np.testing.assert_allclose(plan.keys[0, 2], 0.0)


def test_prorata_production_is_static_per_billing_period():
    c = np.ones((1, 4, 2))
    p = np.array([[[0, 2], [0, 0], [3, 0], [1, 0]]], float) + c  # P- = [[0,2],[0,0],[3,0],[1,0]]
    inp = KeyInputs.from_arrays(c, p, period=np.array([0, 0, 1, 1]))
    keys = make_plan(inp, "KoR3").keys
    np.testing.assert_allclose(keys[0, :2], [[0, 1], [0, 1]])
    np.testing.assert_allclose(keys[0, 2:], [[1, 0], [1, 0]])
    keys1 = make_plan(KeyInputs.from_arrays(c, p), "KoR3").keys  # one period
    np.testing.assert_allclose(keys1[0, 0], [4 / 6, 2 / 6])


# ------------------------------------------------------------------ Mustika vs Ospina
def ospina_hep(g, d):
    """Ospina Algorithm A.5, literally (one step)."""
    m = len(d)
    eps = g / m
    a = [min(eps, x) for x in d]
    s = sum(eps - x for x in a)
    r = [max(x - eps, 0) for x in d]
    big_r = sum(r)
    if s > 0 and big_r > 0:
        a = [a[i] + r[i] / big_r * s for i in range(m)]
    return a


def ospina_cascade(g, d):
    """Ospina Algorithm A.6, literally (one step)."""
    active = set(range(len(d)))
    pool = g
    a = [0.0] * len(d)
    r = [max(x, 0.0) for x in d]
    while active:
        eps = pool / len(active)
        full = [m for m in active if r[m] <= eps]
        if not full:
            for m in active:
                a[m] += eps
            break
        for m in full:
            a[m] += r[m]
            pool -= r[m]
            active.discard(m)
        pool = max(pool, 0.0)
    return a


def mustika_cascade(g, d, max_iter=10_000):
    """Mustika Algorithm 4, literally: repeat equal keys among consumers (one step)."""
    d = list(d)
    d0 = list(d)
    prod = g
    for _ in range(max_iter):
        if not (prod > 1e-15 and sum(d) > 1e-15):
            break
        consumers = [i for i, x in enumerate(d) if x > 0]
        alloc = {i: prod / len(consumers) for i in consumers}
        take = {i: min(alloc[i], d[i]) for i in consumers}
        for i in consumers:
            d[i] -= take[i]
        prod -= sum(take.values())
    return [d0[i] - d[i] for i in range(len(d))]


def random_steps(seed, s=2, t=40, u=6, zero=0.3):
    rng = np.random.default_rng(seed)
    c = rng.uniform(0, 3, (s, t, u)) * (rng.random((s, t, u)) > zero)
    p = rng.uniform(0, 4, (s, t, u)) * (rng.random((s, t, u)) > 0.6)
    return KeyInputs.from_arrays(c, p)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cascade_agrees_with_both_papers(seed):
    inp = random_steps(seed)
    got = settle_plan(inp, make_plan(inp, "CA"))["comm_in"]
    rounds = settle_plan(inp, key_cascade_rounds(inp))["comm_in"]
    np.testing.assert_allclose(got, rounds, atol=1e-9)
    g = inp.net_production.sum(-1)
    for s, t in itertools.product(range(2), range(40)):
        d = inp.net_consumption[s, t]
        want_o = np.minimum(ospina_cascade(g[s, t], d), d)
        np.testing.assert_allclose(got[s, t], want_o, atol=1e-9)
        np.testing.assert_allclose(got[s, t], mustika_cascade(g[s, t], d), atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_hybrid_agrees_with_ospina_a5_and_mustika_when_all_consume(seed):
    inp = random_steps(seed)
    hep = settle_plan(inp, make_plan(inp, "HEP"))["comm_in"]
    g = inp.net_production.sum(-1)
    for s, t in itertools.product(range(2), range(40)):
        d = inp.net_consumption[s, t]
        np.testing.assert_allclose(hep[s, t], np.minimum(ospina_hep(g[s, t], d), d),
                                   atol=1e-9)
    for among in ("all", "consumers"):  # closed form = the two-round settlement
        np.testing.assert_allclose(
            settle_plan(inp, key_hybrid(inp, among))["comm_in"],
            settle_plan(inp, key_hybrid_rounds(inp, among))["comm_in"], atol=1e-12)
    # where every member has C+ > 0, Mustika's KoR5 (equal among consumers) = HEP
    inp2 = KeyInputs(inp.net_consumption + 0.1, inp.net_production)
    np.testing.assert_allclose(settle_plan(inp2, make_plan(inp2, "KoR5"))["comm_in"],
                               settle_plan(inp2, make_plan(inp2, "HEP"))["comm_in"])


def test_equal_and_prorata_agree_across_papers():
    inp = random_steps(3)
    for a, b in (("KoR1", "ES"), ("KoR2", "PR"), ("KoR6", "CA")):
        np.testing.assert_allclose(settle_plan(inp, make_plan(inp, a))["comm_in"],
                                   settle_plan(inp, make_plan(inp, b))["comm_in"])


# ------------------------------------------------------------------ Shapley
def shapley_by_permutations(c, p):
    """Oracle: mean marginal contribution over all orders, pure Python (one step)."""
    u = len(c)
    phi = np.zeros(u)
    perms = list(itertools.permutations(range(u)))
    for order in perms:
        cs = ps = 0.0
        prev = 0.0
        for i in order:
            cs += c[i]
            ps += p[i]
            v = min(cs, ps)
            phi[i] += v - prev
            prev = v
    return phi / len(perms)


def test_shapley_exact_hand_and_oracle():
    # one producer (3 kWh) and two consumers (1 and 2 kWh): v(S) = min(3, C_S) with D in S
    # -> D: 1.5 + ... computed by hand: orders of {A(1), B(2), D}:
    # D's marginal = C of those before it (capped at 3); A: 1 if D before A; B: 2 if D before
    # phi_D = (0+0+1+2+3+3)/6 = 1.5, phi_A = 3/6 = 0.5, phi_B = 6/6 = 1.0
    c = np.array([[[1.0, 2.0, 0.0]]])
    p = np.array([[[0.0, 0.0, 3.0]]])
    np.testing.assert_allclose(shapley_values(c, p)[0, 0], [0.5, 1.0, 1.5])
    np.testing.assert_allclose(shapley_keys(c, p)[0, 0], [0.5 / 3, 1 / 3, 0.5])
    inp = random_steps(4, t=10, u=5)
    exact = shapley_values(inp.net_consumption, inp.net_production)
    for s, t in itertools.product(range(2), range(10)):
        np.testing.assert_allclose(
            exact[s, t], shapley_by_permutations(inp.net_consumption[s, t],
                                                 inp.net_production[s, t]), atol=1e-12)
    # efficiency: sum phi = v(N)
    v_n = np.minimum(inp.net_consumption.sum(-1), inp.net_production.sum(-1))
    np.testing.assert_allclose(exact.sum(-1), v_n, atol=1e-12)


def test_shapley_exact_vs_sampled():
    inp = random_steps(5, t=20, u=7)
    c, p = inp.net_consumption, inp.net_production
    exact = shapley_values(c, p)
    every = shapley_values(c, p, permutations="all")
    np.testing.assert_allclose(every, exact, atol=1e-12)
    sampled = shapley_values(c, p, exact_max=0, n_permutations=3000, seed=1)
    scale = np.maximum(c, p).max()
    assert np.abs(sampled - exact).max() < 0.06 * scale
    assert np.abs(sampled - exact).mean() < 0.01 * scale
    # seeded: same seed, same values; other seed, other values
    again = shapley_values(c, p, exact_max=0, n_permutations=3000, seed=1)
    np.testing.assert_array_equal(sampled, again)
    other = shapley_values(c, p, exact_max=0, n_permutations=3000, seed=2)
    assert not np.array_equal(sampled, other)
    # sampling is still efficient (sum phi = v(N)) for every order
    np.testing.assert_allclose(sampled.sum(-1), np.minimum(c.sum(-1), p.sum(-1)), atol=1e-9)


def test_shapley_clipping_and_normalisation():
    k = normalise_shapley(np.array([[-1.0, 1.0, 3.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(k, [[0, 0.25, 0.75], [0, 0, 0]])


# ------------------------------------------------------------------ multi-round / fixed
def test_multiround_hand_computed():
    # step 3: round 1 half of G (1.5) equally to all 4 (0.375 each): takes [.375]*3
    # round 2 the other half + 0.375 unused by D = 1.875 pro rata remaining need
    # [0.125, 1.625, 3.125] (sum 4.875)
    plan = multiround_plan(inputs(), [RoundSpec(0.5, "equal"), RoundSpec(0.5, "prorata")])
    res = settle_plan(inputs(), plan)
    rem = np.array([0.125, 1.625, 3.125])
    want = 0.375 + 1.875 * rem / rem.sum()
    np.testing.assert_allclose(res["comm_in"][0, 3, :3], want)
    assert parse_rounds("0.5:equal, 0.5:prorata") == [RoundSpec(0.5, "equal"),
                                                       RoundSpec(0.5, "prorata")]


def test_fixed_multi_round_redistributes_leftover(tmp_path):
    f = tmp_path / "shares.csv"
    f.write_text("member,round_1,round_2\nA,10,50\nB,20,50\nC,30,0\nD,40,0\n")
    table = read_shares_csv(f, ["A", "B", "C", "D"])
    np.testing.assert_allclose(table, [[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0, 0]])
    res = settle_plan(inputs(), fixed_plan(inputs(), table))
    # step 3 round 1 takes [.3, .6, .9, 0], leftover 1.2 split 50/50 between A and B:
    # A needs .2 more, B takes .6
    np.testing.assert_allclose(res["comm_in"][0, 3], [0.5, 1.2, 0.9, 0.0])
    f.write_text("member,share\nA,0.5\nZ,0.5\n")
    with pytest.raises(Exception, match="missing"):
        read_shares_csv(f, ["A", "B", "C", "D"])


def test_settle_key_on_instance_goes_through_settle(tiny_instance):
    ds = settle_key(tiny_instance, "HEP")
    assert {"bill", "baseline_bill", "community_intake"} <= set(ds.data_vars)
    assert "round_take" in settle_key(tiny_instance, key_hybrid_rounds).data_vars
    assert ds.attrs["key"] == "HEP"


# ------------------------------------------------------------------ properties
energies = arrays(float, (2, 5), elements=st.floats(0, 10, allow_subnormal=False))


@settings(max_examples=60, deadline=None)
@given(energies, energies)
def test_properties_every_key(c, p):
    inp = KeyInputs.from_arrays(c[None], p[None], member_data={"investment": np.ones(5)})
    g = inp.net_production.sum(-1)
    bound = np.minimum(g, inp.net_consumption.sum(-1))
    for name in KEYS:
        if name in ("GS", "fixed"):
            plan = make_plan(inp, "fixed", shares=[0.1, 0.2, 0.3, 0.1, 0.3])
        else:
            plan = make_plan(inp, name)
        res = settle_plan(inp, plan)
        cin = res["comm_in"]
        assert np.all(cin >= 0)
        assert np.all(cin <= inp.net_consumption + 1e-9)  # never above need
        assert np.all(cin.sum(-1) <= g + 1e-9)  # never more than production
        assert np.all(cin.sum(-1) <= bound + 1e-9)  # the upper bound
    # prorata and cascade reach the bound in one round at every step
    for name in ("PR", "CA", "HEP"):
        cin = settle_plan(inp, make_plan(inp, name))["comm_in"]
        np.testing.assert_allclose(cin.sum(-1), bound, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(energies, st.floats(0, 30), arrays(float, 5, elements=st.floats(0, 3)))
def test_waterfill_properties(need, g, w):
    alloc = waterfill(need[None], np.full((1, 2), g), w)
    active = w >= 1e-12 * w.max() if w.max() > 0 else w > 0  # tiny weights count as 0
    assert np.all(alloc <= np.maximum(need, 0) + 1e-9)
    assert np.all(alloc[..., ~active] == 0)
    total = alloc.sum(-1)
    cap = np.where(active, need, 0).sum(-1)
    np.testing.assert_allclose(total[0], np.minimum(g, cap), atol=1e-7)
