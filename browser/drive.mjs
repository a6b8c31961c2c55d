// Drive Debian's Chromium (headless) to a page and print what it left in
// window.tvmResult, as JSON on stdout. Usage: node drive.mjs URL [TIMEOUT_MS]
import { chromium } from "playwright-core";

const [url, timeout = "60000"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  const console_ = [];
  page.on("console", (m) => console_.push(m.text()));
  await page.goto(url);
  await page.waitForFunction(() => window.tvmResult && window.tvmResult.done, null, { timeout: Number(timeout) });
  const result = await page.evaluate(() => window.tvmResult);
  process.stdout.write(JSON.stringify({ ...result, console: console_ }) + "\n");
} finally {
  await browser.close();
}
