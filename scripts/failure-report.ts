// Picks uvu's failure reports out of a whole test run's output. uvu prints each failure right after the file that
// failed, hundreds of lines before the summary; CI keeps only the end of a long log, so a failure from an early file
// was invisible there (session 8's CI said "1 failed" and nothing else). The test runner prints this report last.

const ANSI_ESCAPE = /\x1b\[[0-9;]*m/g;
// uvu names each file alone on a line, relative to the test directory: "integration/api-etcd.test.ts".
const FILE_HEADER = /^\S+\.(test|fixture)\.[cm]?[jt]s$/;
const FAILURE_START = /^\s+FAIL\s/;
const SUMMARY_START = /^\s+Total:/;
// A report's message, diff and stack fit in this; a huge diff is cut so that a few failures still fit CI's window.
const MAX_LINES_PER_FAILURE = 40;

export function stripColour(text: string): string {
  return text.replace(ANSI_ESCAPE, "");
}

/** Each failure uvu reported, preceded by the file it is in; "" when there is none. */
export function failureReport(output: string): string {
  const blocks: string[] = [];
  let file = "";
  let current: string[] | undefined;
  const finish = () => {
    if (current === undefined) return;
    while (current.length > 0 && current.at(-1)?.trim() === "") current.pop();
    const cut = current.length - MAX_LINES_PER_FAILURE;
    const lines =
      cut > 0 ? [...current.slice(0, MAX_LINES_PER_FAILURE), `    … ${cut} more lines above, in the run`] : current;
    blocks.push(`${file}\n${lines.join("\n")}`);
    current = undefined;
  };
  for (const line of stripColour(output).split("\n")) {
    if (FILE_HEADER.test(line) || SUMMARY_START.test(line)) {
      finish();
      if (FILE_HEADER.test(line)) file = line;
    } else if (FAILURE_START.test(line)) {
      finish();
      current = [line];
    } else if (current !== undefined) {
      current.push(line);
    }
  }
  finish();
  return blocks.join("\n\n");
}
