// Browser sources import style sheets for esbuild to bundle (scripts/build-web.js); to tsc they are modules of nothing.
declare module '*.css';
