"""Which lines count as marked equivalent in the mutation report (tests/mutation_testing.py):
the reason is written in a comment on the line or in the comment block right above it."""

from tests.mutation_testing import marked_code

SOURCE = '''def f(now, pdf):
    x = 1  # equivalent: on the line itself
    # equivalent: the line right above
    y = 2
    # equivalent: the first line of a block of three, which goes on
    # over a second line
    # and a third
    z = 3
    # a comment that says nothing of equivalence
    w = 4
    # equivalent: a mark ends at the next line of code

    v = 5
    u = 6
'''


def test_a_mark_on_the_line_or_anywhere_in_the_comment_block_above_it_counts() -> None:
    assert marked_code(SOURCE) == ["x = 1", "y = 2", "z = 3"]


def test_a_comment_block_without_the_word_marks_nothing() -> None:
    assert marked_code("# a reason\n# over two lines\nz = 3\n") == []
