// Bundle render_entry.jsx for the browser (esbuild from the npm registry).
const path = require('path');
require('esbuild').buildSync({
    entryPoints: [path.join(__dirname, 'render_entry.jsx')],
    bundle: true,
    outfile: path.join(__dirname, 'out', 'bundle.js'),
    loader: { '.js': 'jsx', '.svg': 'dataurl', '.png': 'dataurl', '.woff': 'dataurl', '.woff2': 'dataurl', '.ttf': 'dataurl', '.css': 'css' },
    define: { 'process.env.NODE_ENV': '"production"', global: 'window' },
    jsx: 'automatic',
    minify: false,
    logLevel: 'warning',
});
console.log('bundled out/bundle.js');
