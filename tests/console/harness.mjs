// What the console's browser tests share: their settings from the environment, headless
// Chromium through playwright-core with Content-Security-Policy violations and script errors
// collected, named and timed steps with screenshots, polling with a deadline, and the end of a
// run (a screenshot of the moment on failure; exit status 0 or 1).

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** How long a step waits for the page. */
export const WAIT = 30_000;

/** The environment variable `name`, or exit 2 naming it. */
export function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${path.basename(process.argv[1])}: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

/** Polls `probe` until it returns a truthy value. */
export async function until(what, probe, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Runs `body({ page, context, violations, step, shot })` in a fresh page of `viewport`,
 * each `step(name, fn)` printed as `<label> N: name … ok`, screenshots in SCREENSHOT_DIR;
 * exits 1 after the first failure (with a screenshot of the moment), 0 otherwise.
 */
export async function runInBrowser(label, viewport, body) {
  const shots = env('SCREENSHOT_DIR');
  fs.mkdirSync(shots, { recursive: true });
  const require = createRequire(path.join(env('PAKAURA_TOOLS_NODE_MODULES'), 'resolve-from-here.js'));
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({
    executablePath: env('PAKAURA_CHROMIUM'),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const violations = [];
  let page;
  let failed = false;
  try {
    const context = await browser.newContext({ viewport });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content.Security.Policy/i.test(message.text())) {
        violations.push(message.text());
      }
    });
    page.on('pageerror', (error) => violations.push(`page error: ${error.message}`));
    let stepNo = 0;
    const step = async (name, fn) => {
      stepNo += 1;
      const started = Date.now();
      process.stdout.write(`${label} ${stepNo}: ${name} … `);
      await fn();
      console.log(`ok (${Date.now() - started} ms)`);
    };
    const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
    await body({ page, context, violations, step, shot });
  } catch (error) {
    failed = true;
    console.log('FAILED');
    console.error(error);
    if (violations.length) console.error('violations:', violations);
    if (page) await page.screenshot({ path: path.join(shots, 'failure.png'), fullPage: true }).catch(() => {});
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
}
