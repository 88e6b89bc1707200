/**
 * A module test's TAP (and a `run` job's end) as JUnit XML, the report CI systems show (GitLab and Jenkins natively,
 * GitHub Actions through a reporter action): one testcase per TAP test line, the guest's whole
 * output as system-out. A plan that was not met, and a bail-out, are failed testcases of their own,
 * so a test program that died half-way never reads as green. It follows the JUnit schema Jenkins
 * reads (junit-4.xsd: a skip's reason is the text of <skipped>), which GitLab and GitHub's
 * reporters read too. Pure.
 */

export interface JunitOptions {
  /** The testsuite's name (the module tree, say). */
  suite: string;
  /** The testcases' classname. */
  classname: string;
  timestamp?: string;
  /** Seconds the test took. */
  seconds?: number;
  /**
   * m5dev's own verdict (the test program's exit code, and whether its TAP passed): when it says
   * failed and no testcase does, a testcase says so, so the report is never green when m5dev is not.
   */
  outcome?: { exitCode: number; passed: boolean };
}

interface Case {
  name: string;
  failure?: string;
  skipped?: string;
}

/** Text for XML: the characters XML 1.0 cannot carry at all become U+FFFD. */
function xmlText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '\ufffd');
}

const attr = (s: string): string => xmlText(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/\n/g, '&#10;');
const cdata = (s: string): string => `<![CDATA[${xmlText(s).replace(/]]>/g, ']]]]><![CDATA[>')}]]>`;

export function tapToJunit(tap: string, o: JunitOptions): string {
  const cases: Case[] = [];
  let planned: number | undefined;
  let bailed: string | undefined;
  for (const raw of tap.split('\n')) {
    const line = raw.trim();
    const t = /^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?([^#]*?)\s*(?:#\s*(SKIP|TODO)\b\s*(.*))?$/i.exec(line);
    if (t) {
      const name = t[3] || `test ${t[2] ?? cases.length + 1}`;
      const directive = t[4]?.toUpperCase();
      if (directive === 'SKIP') cases.push({ name, skipped: t[5] ?? '' });
      else if (t[1] === 'not ok' && directive !== 'TODO') cases.push({ name, failure: line });
      else cases.push({ name });
      continue;
    }
    const plan = /^1\.\.(\d+)/.exec(line);
    if (plan) planned = Number(plan[1]);
    if (line.startsWith('Bail out!')) bailed = line;
  }
  if (planned === undefined) cases.push({ name: 'TAP plan', failure: 'the test program printed no plan (1..N)' });
  else if (planned !== cases.length) cases.push({ name: 'TAP plan', failure: `planned ${planned} tests, ran ${cases.length}` });
  if (bailed !== undefined) cases.push({ name: 'bail out', failure: bailed });
  if (o.outcome && (o.outcome.exitCode !== 0 || !o.outcome.passed) && !cases.some((c) => c.failure !== undefined)) {
    cases.push({ name: 'test program', failure: `the test program exited ${o.outcome.exitCode}${o.outcome.passed ? '' : ' and its TAP did not pass (m5dev counts a TODO failure and a plan of 0 as failed)'}` });
  }
  return renderJunit(cases, o, tap);
}

/**
 * A disk-image job (`m5dev run`) as JUnit XML: one testcase, failed with what ended it unless the
 * guest's exit ended it, the console as system-out. Pure.
 */
export function jobToJunit(o: Omit<JunitOptions, 'outcome'> & { name: string; console: string; failure?: string }): string {
  return renderJunit([{ name: o.name, failure: o.failure }], o, o.console);
}

function renderJunit(cases: Case[], o: Pick<JunitOptions, 'suite' | 'classname' | 'timestamp' | 'seconds'>, out: string): string {
  const failures = cases.filter((c) => c.failure !== undefined).length;
  const skipped = cases.filter((c) => c.skipped !== undefined).length;
  const time = o.seconds !== undefined ? ` time="${o.seconds.toFixed(3)}"` : '';
  const body = cases.map((c) => {
    const open = `    <testcase name="${attr(c.name)}" classname="${attr(o.classname)}"`;
    if (c.failure !== undefined) return `${open}>\n      <failure message="${attr(c.failure)}" type="TAP">${cdata(c.failure)}</failure>\n    </testcase>`;
    if (c.skipped !== undefined) return `${open}>\n      <skipped>${cdata(c.skipped)}</skipped>\n    </testcase>`;
    return `${open}/>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="m5dev" tests="${cases.length}" failures="${failures}" errors="0"${time}>`,
    `  <testsuite name="${attr(o.suite)}" tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}"${time}${o.timestamp ? ` timestamp="${attr(o.timestamp)}"` : ''}>`,
    ...body,
    `    <system-out>${cdata(out)}</system-out>`,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
