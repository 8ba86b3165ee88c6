"""ui.state.remember writes a control's value into the link only when it differs: every write to
st.query_params sends the browser a message that rewrites its address bar."""
from types import SimpleNamespace

import ui.state as state


class Params(dict):
    def __init__(self, *a):
        super().__init__(*a)
        self.writes = []

    def __setitem__(self, key, value):
        self.writes.append(key)
        super().__setitem__(key, value)


def test_remember_writes_only_changed_values(monkeypatch):
    params = Params({"q_bits": "8", "flag": "1"})
    session = {"q_bits": 8, "flag": True, "pr_sparsity": 90.0}
    monkeypatch.setattr(state, "st", SimpleNamespace(query_params=params, session_state=session))
    state.remember("q_bits", "flag", "pr_sparsity", "absent")
    assert params.writes == ["pr_sparsity"] and params["pr_sparsity"] == "90.0"
    session["q_bits"] = 4
    state.remember("q_bits", "flag")
    assert params.writes == ["pr_sparsity", "q_bits"] and params["q_bits"] == "4" and params["flag"] == "1"

