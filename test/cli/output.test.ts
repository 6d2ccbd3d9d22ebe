import assert from "node:assert/strict";
import { cellText, escapeControlCharacters, formatTable, rowCountText } from "../../services/cli/output.js";

/** Matches any C0 control, DEL or C1 control character. */
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

describe("CLI table output", () => {
  describe("escapeControlCharacters", () => {
    const cases: [string, string, string][] = [
      ["clear screen and title", "A\u001b[2J\u001b]0;pwned\u0007B", "A\\x1b[2J\\x1b]0;pwned\\x07B"],
      ["newline", "a\nb", "a\\nb"],
      ["tab", "a\tb", "a\\tb"],
      ["carriage return", "a\rb", "a\\rb"],
      ["NUL", "a\u0000b", "a\\x00b"],
      ["DEL", "a\u007fb", "a\\x7fb"],
      ["C1 CSI", "a\u009b2Jb", "a\\x9b2Jb"],
      ["bidi override", "a\u202eb", "a\\u202eb"],
      ["bidi isolate", "a\u2066b", "a\\u2066b"],
    ];
    for (const [name, input, expected] of cases) {
      it(`escapes ${name}`, () => {
        assert.equal(escapeControlCharacters(input), expected);
      });
    }

    it("keeps printable text", () => {
      assert.equal(escapeControlCharacters("Zoë, 東京 \\x1b"), "Zoë, 東京 \\x1b");
    });
  });

  describe("formatTable", () => {
    it("prints no control characters", () => {
      const table = formatTable(["name\u001b[31m"], [["A\u001b[2J\u001b]0;pwned\u0007B"], ["x\ty\nz"]]);
      const unsafe = table.split("\n").filter((line) => RAW_CONTROL.test(line));

      assert.deepEqual(unsafe, [], JSON.stringify(table));
      assert.ok(table.includes("A\\x1b[2J\\x1b]0;pwned\\x07B"), table);
      assert.ok(table.includes("name\\x1b[31m"), table);
    });

    it("keeps one line per row", () => {
      const lines = formatTable(["id", "note"], [[1, "a\nb"], [2, "c\r\nd"], [3, "e"]]).split("\n");

      // Top border, header, header separator, three rows, bottom border.
      assert.equal(lines.length, 7, lines.join("\n"));
      assert.match(lines[3], /│ 1 +│ a\\nb +│/);
      assert.match(lines[4], /│ 2 +│ c\\r\\nd +│/);
    });

    it("has no separator between rows", () => {
      const lines = formatTable(["id"], [[1], [2]]).split("\n");

      assert.deepEqual(
        lines.map((line) => line[0]),
        ["┌", "│", "├", "│", "│", "└"],
      );
    });

    it("shows NULL apart from empty text", () => {
      const lines = formatTable(["value"], [[null], [""]]).split("\n");

      assert.match(lines[3], /│ NULL +│/);
      assert.match(lines[4], /│ {2,}│/);
    });

    it("dims NULL with color", () => {
      assert.equal(cellText(null, { color: true }), "\u001b[2mNULL\u001b[22m");
    });

    it("leaves undefined empty", () => {
      assert.equal(cellText(undefined), "");
    });
  });

  describe("rowCountText", () => {
    it("uses the singular for one", () => {
      assert.equal(rowCountText(1n), "1 row");
    });

    it("uses the plural otherwise", () => {
      assert.equal(rowCountText(0), "0 rows");
      assert.equal(rowCountText(24n), "24 rows");
    });
  });
});
