// Bundle the Configuration page for Splunk Web (esbuild from the npm registry, pinned by
// package-lock.json). Output: appserver/static/build/configuration.js, no source map, no CDN.
const path = require('path');

const out = process.argv[2] || path.join(__dirname, '..', '..', 'appserver', 'static', 'build', 'configuration.js');
require('esbuild').buildSync({
    entryPoints: [path.join(__dirname, 'src', 'index.jsx')],
    bundle: true,
    outfile: out,
    loader: { '.js': 'jsx' },
    define: { 'process.env.NODE_ENV': '"production"', global: 'window' },
    jsx: 'automatic',
    minify: true,
    legalComments: 'eof',
    target: ['es2019'],
    logLevel: 'warning',
});
console.log(`bundled ${path.relative(process.cwd(), out)}`);
