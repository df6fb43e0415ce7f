// Render the Dashboard Studio view offline: Splunk's DashboardCore in Debian's headless Chromium,
// data sources replaced by sample results. Prints the validator's findings; writes a screenshot.
// Usage: node render.js --samples out/samples.json --out ../../docs/dashboard.png [--view X.xml]
const fs = require('fs');
const path = require('path');
const puppeteer = require('puppeteer-core');

function arg(name, fallback) {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : fallback;
}
const view = arg('view', path.join(__dirname, '..', '..', 'default', 'data', 'ui', 'views',
    'iam_error_spike_investigation.xml'));
const samplesPath = arg('samples', path.join(__dirname, 'out', 'samples.json'));
const outPng = arg('out', path.join(__dirname, 'out', 'dashboard.png'));
const chromium = arg('chromium', '/usr/bin/chromium');

const xml = fs.readFileSync(view, 'utf8');
const definition = JSON.parse(xml.match(/<definition><!\[CDATA\[([\s\S]*?)\]\]><\/definition>/)[1]);
const samples = fs.existsSync(samplesPath) ? JSON.parse(fs.readFileSync(samplesPath, 'utf8')) : {};
const outDir = path.join(__dirname, 'out');
const html = `<!doctype html><html><head><meta charset="utf-8"><link rel="stylesheet" href="bundle.css">
<style>body{margin:0;background:#fff;font-family:sans-serif} h1{font-size:20px;margin:8px 12px}</style></head>
<body><h1>${definition.title}</h1><div id="root"></div>
<script>window.__DEFINITION__ = ${JSON.stringify(definition)}; window.__SAMPLES__ = ${JSON.stringify(samples)};</script>
<script src="bundle.js"></script></body></html>`;
fs.writeFileSync(path.join(outDir, 'index.html'), html);

(async () => {
    const browser = await puppeteer.launch({
        executablePath: chromium,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--allow-file-access-from-files'],
    });
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.setViewport({ width: 1480, height: 1000, deviceScaleFactor: 1 });
    await page.goto(`file://${path.join(outDir, 'index.html')}`, { waitUntil: 'load', timeout: 120000 });
    await page.waitForFunction('window.__RENDERED__ === true', { timeout: 120000 });
    await new Promise((r) => setTimeout(r, Number(arg('settle', '8000'))));
    const validation = await page.evaluate(() => window.__VALIDATION__);
    const missing = await page.evaluate(() => window.__MISSING_SAMPLES__);
    await page.screenshot({ path: outPng, fullPage: true });
    await browser.close();
    console.log(JSON.stringify({ validation, missing_samples: missing, page_errors: errors.slice(0, 20) }, null, 2));
    console.log(`screenshot: ${outPng}`);
    process.exit(validation.length ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(2); });
