import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { runVirtual, threeClientScenario } from './support/three-virtual-clients.js';

/**
 * The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core (CI
 * installs it; nothing is downloaded). PROTOFED_UPDATE_SCREENSHOT=1 writes the README's
 * screenshot (docs/dashboard.png) instead of a temporary file.
 */
const browserPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

describe.skipIf(!browserPath)(`the dashboard in headless chromium${browserPath ? '' : ' (skipped: no chromium; apt-get install chromium)'}`, () => {
  it('shows the mission in progress and the global accuracy while the run goes on, and a screenshot of it is taken', async () => {
    const shot = process.env.PROTOFED_UPDATE_SCREENSHOT ? join(process.cwd(), 'docs/dashboard.png') : join(mkdtempSync(join(tmpdir(), 'protofed-shot-')), 'dashboard.png');
    let url = '';
    let seen: Promise<{ status: string; rows: number; charts: number }> | undefined;
    const browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'], headless: true });
    try {
      const result = await runVirtual(threeClientScenario('dashboard-browser', 6, {
        // Slow enough (about 1 s per mission) that a loaded machine still opens the page mid-run.
        missions: { count: 8, classesPerClient: 2, shotsPerClass: 5 },
        faults: { stragglers: { probability: 1, delayMs: 900 } },
        timeouts: { phaseMs: 60_000, connectMs: 60_000 },
      }), {
        dashboard: true,
        onDashboard: (u) => (url = u),
        onMission: (m) => {
          if (m.mission !== 2) return;
          seen = (async () => {
            const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
            const errors: string[] = [];
            page.on('pageerror', (err) => errors.push(err.message));
            await page.goto(url);
            await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
            await page.waitForFunction(() => /global accuracy/.test(document.getElementById('status')?.textContent ?? ''), undefined, { timeout: 15_000 });
            await page.screenshot({ path: shot, fullPage: true });
            expect(errors).toEqual([]);
            return {
              status: (await page.textContent('#status')) ?? '',
              rows: await page.locator('#clients tbody tr').count(),
              charts: await page.locator('.uplot canvas').count(),
            };
          })();
        },
      });
      const { status, rows, charts } = await seen!;
      // The page says which mission runs and the global accuracy after the ones before it.
      expect(status).toMatch(/^mission [3-8] of 8: (learning|evaluating|running) · global accuracy 0\.\d{4} over \d+ classes$/);
      const accuracy = Number(/global accuracy (0\.\d{4})/.exec(status)![1]);
      expect(accuracy).toBeGreaterThan(0.3);
      expect(rows).toBe(3);
      expect(charts).toBe(2);
      expect(existsSync(shot)).toBe(true);
      expect(result.summary.missions).toBe(8);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
