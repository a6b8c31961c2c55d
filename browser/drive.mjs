// Drive Debian's Chromium (headless) through the page once per URL, all at
// once, each in a browser context of its own with a fake clock:
// `tvm.start()` (sign in, vend, DynamoDB calls), then the page's clock set to
// one second inside the SDK's refresh window of those credentials (300 s
// before they expire), then `tvm.again()`: the SDK refreshes first. Prints a
// JSON array of what each page saw. Usage: node drive.mjs TIMEOUT_MS URL...
import { chromium } from "playwright-core";

const [timeout, ...urls] = process.argv.slice(2);
if (!urls.length) {
  console.error("usage: node drive.mjs TIMEOUT_MS URL...");
  process.exit(2);
}
// @smithy/core's EXPIRATION_MS: the SDK refreshes credentials that expire
// within this long.
const REFRESH_WINDOW_MS = 300_000;
// Real time let pass before the move. The page's clock is then 299 s short
// of the first credentials' expiry; the refreshed ones expire as long after
// their own vend (server time, whole seconds), so they look fresh only if
// more real time than STS's rounding passed between the two vends: moved at
// once, the clock would make the SDK refresh again on every call.
const SETTLE_MS = 3000;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  timeout: Number(timeout),
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
async function drive(url) {
  const context = await browser.newContext();
  context.setDefaultTimeout(Number(timeout));
  const page = await context.newPage();
  const logs = [];
  page.on("console", (m) => logs.push(m.text()));
  page.on("pageerror", (e) => logs.push(`page error: ${e.message}`));
  try {
    // The clock flows as usual until moved: fetches and timers run normally.
    await page.clock.install();
    await page.goto(url);
    await page.waitForFunction(() => window.tvm !== undefined);
    const first = await page.evaluate(() => window.tvm.start());
    if (first.errors.length) return { ...first, console: logs };
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const expiry = Date.parse(first.vends[0].expiration);
    await page.clock.setSystemTime(expiry - REFRESH_WINDOW_MS + 1000);
    const seen = await page.evaluate(() => window.tvm.again());
    return { ...seen, console: logs };
  } finally {
    await context.close();
  }
}

let results;
try {
  results = await Promise.all(urls.map(drive));
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(results) + "\n");
