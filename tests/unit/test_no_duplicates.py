"""No block of six lines repeated across modules outside migrations and tests (issue 17); the detector and its
normalisation are in scripts/duplicates.py (`python -m scripts.duplicates` lists the blocks)."""

from __future__ import annotations

from scripts.duplicates import describe, modules, normalised_lines, repeated_blocks


def test_no_block_of_six_lines_is_repeated_across_modules():
    blocks = repeated_blocks(modules())
    assert blocks == [], f"{len(blocks)} blocks repeated across modules (fold them into one place):\n" + describe(
        blocks)


def test_the_detector_sees_a_copy_and_ignores_comments_and_imports():
    body = "def f(x):\n" + "".join(f"    y{i} = x + {i}  # step {i}\n" for i in range(6)) + "    return y5\n"
    other = '"""Another module."""\nimport os\n\n' + body.replace("# step", "# other words for step")
    blocks = repeated_blocks({"a.py": normalised_lines(body), "b.py": normalised_lines(other)})
    assert describe(blocks) == "a.py:1-8 = b.py:4-11"
    assert repeated_blocks({"a.py": normalised_lines(body), "b.py": normalised_lines(body.replace("y3", "z3"))}) == []


def test_a_table_may_declare_the_fields_of_the_value_it_stores():
    fields = "".join(f"    n{i}: int = 0\n" for i in range(8))
    value = "class Counts:\n" + fields + "    def total(self):\n        return 0\n"
    table = "class Rollup(SQLModel, table=True):\n    id: int | None = Field(default=None)\n" + fields
    assert repeated_blocks({"core.py": normalised_lines(value), "store.py": normalised_lines(table)}) == []
    # The same lines as statements (logic, not declarations) are a copy.
    logic = "def f():\n" + fields.replace(": int", "") + "    return n0\n"
    assert repeated_blocks({"a.py": normalised_lines(logic), "b.py": normalised_lines(logic)}) != []
