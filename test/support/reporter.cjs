// Mocha reporter: the usual spec output, plus the totals written as JSON to
// the file named by EWII_TEST_TOTALS so that CI can print them on one line.
const fs = require("node:fs");
const Mocha = require("mocha");

class SpecWithTotals extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once("end", () => {
      const file = process.env.EWII_TEST_TOTALS;
      if (!file) return;
      const { passes, failures, pending, tests } = this.stats;
      fs.writeFileSync(file, JSON.stringify({ passes, failures, pending, tests }) + "\n");
    });
  }
}

module.exports = SpecWithTotals;
