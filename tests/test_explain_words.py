"""The words the pages put around a computed number."""


def test_gap_words_reads_as_a_comparison():
    from ui.explain import gap_words

    assert gap_words(-1.94, 1) == "**1.9 points below**" and gap_words(0.304) == "**0.30 points above**"
    assert gap_words(0.004) == gap_words(-0.004) == "**level with**"  # rounds to zero: no sign to read
