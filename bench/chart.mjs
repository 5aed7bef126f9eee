#!/usr/bin/env node
/**
 * An SVG bar chart of bench/results/peers.json: GFLOP/s per shape and GRU form, one bar per library,
 * a panel for the forward pass and one for forward+backward. Plain SVG text, no dependencies.
 *
 *   node bench/chart.mjs [bench/results/peers.json] [bench/results/peers.svg]
 *
 * bench/peers.mjs calls writeChart at the end of every run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const COLORS = {
  fastgru: '#1f5fa8',
  'fastgru-1t': '#8fb8e6',
  ort: '#e8731a',
  'ort-1t': '#f6c08f',
  tfjs: '#3a9a3a',
  pytorch: '#c8323c',
};
const FALLBACK = ['#7b4fa8', '#8c6d31', '#555555', '#d45fae'];

const escape = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** 1, 2, 5 × 10^k steps giving about five ticks up to max. */
function ticks(max) {
  if (!(max > 0)) return { step: 1, top: 1 };
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
  return { step, top: Math.ceil(max / step) * step };
}

function fmt(v) {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v > 0 ? v.toPrecision(1) : '0';
}

/** One panel's SVG elements: axes, gridlines, grouped bars with values, group labels. */
function panel({ x0, y0, width, height, title, cells, pass, ids, colors }) {
  const out = [];
  const values = cells.flatMap((c) => ids.map((id) => c.results[pass]?.[id]?.gflops ?? 0));
  const groupWidth = width / cells.length;
  const barWidth = Math.min(34, (groupWidth * 0.82) / ids.length);
  // Narrow bars get their values written upwards, which needs more headroom above the tallest bar.
  const vertical = barWidth < 30;
  const { step, top } = ticks(Math.max(...values) * (vertical ? 1.18 : 1.08));
  const y = (v) => y0 + height - (v / top) * height;
  out.push(`<text x="${x0}" y="${y0 - 12}" class="panel">${escape(title)}</text>`);
  for (let v = 0; v <= top + step / 2; v += step) {
    out.push(`<line x1="${x0}" x2="${x0 + width}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/>`);
    out.push(`<text x="${x0 - 6}" y="${(y(v) + 4).toFixed(1)}" class="tick" text-anchor="end">${Number(v.toPrecision(6))}</text>`);
  }
  out.push(`<line x1="${x0}" x2="${x0}" y1="${y0}" y2="${y0 + height}" class="axis"/>`);
  out.push(`<line x1="${x0}" x2="${x0 + width}" y1="${y0 + height}" y2="${y0 + height}" class="axis"/>`);
  out.push(`<text transform="translate(${x0 - 46},${y0 + height / 2}) rotate(-90)" class="label" text-anchor="middle">GFLOP/s</text>`);
  cells.forEach((c, g) => {
    const gx = x0 + g * groupWidth + (groupWidth - barWidth * ids.length) / 2;
    ids.forEach((id, k) => {
      const r = c.results[pass]?.[id];
      const bx = gx + k * barWidth;
      const cx = bx + barWidth / 2;
      if (!r) {
        out.push(`<text x="${cx.toFixed(1)}" y="${y0 + height - 4}" class="na" text-anchor="middle">n/a</text>`);
        return;
      }
      const by = y(r.gflops);
      const tip = `${c.shape} ${c.form} ${id}: ${r.medianMs.toFixed(2)} ms, ${r.gflops.toFixed(2)} GFLOP/s, ${r.runs} runs${r.note ? `; ${r.note}` : ''}`;
      out.push(`<rect x="${(bx + 1).toFixed(1)}" y="${by.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${(y0 + height - by).toFixed(1)}" fill="${colors[id]}"><title>${escape(tip)}</title></rect>`);
      const value = `${fmt(r.gflops)}${r.note ? '†' : ''}`;
      out.push(vertical
        ? `<text transform="translate(${(cx + 3.5).toFixed(1)},${(by - 3).toFixed(1)}) rotate(-90)" class="value">${value}</text>`
        : `<text x="${cx.toFixed(1)}" y="${(by - 3).toFixed(1)}" class="value" text-anchor="middle">${value}</text>`);
    });
    const lx = x0 + (g + 0.5) * groupWidth;
    out.push(`<text x="${lx.toFixed(1)}" y="${y0 + height + 16}" class="group" text-anchor="middle">${escape(c.shape)} · ${c.form === 'after' ? 'reset after' : 'reset before'}</text>`);
    out.push(`<text x="${lx.toFixed(1)}" y="${y0 + height + 30}" class="shape" text-anchor="middle">(${c.T}, ${c.B}, ${c.I}, ${c.H})</text>`);
  });
  out.push(`<text x="${x0 + width / 2}" y="${y0 + height + 48}" class="label" text-anchor="middle">shape (T, B, I, H) and GRU form</text>`);
  return out;
}

/** Wraps text to lines of at most n characters. */
function wrap(text, n) {
  const lines = [];
  let line = '';
  for (const word of String(text).split(/\s+/)) {
    if (line && line.length + 1 + word.length > n) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** The SVG text of the chart for a peers.json report. */
export function chartSvg(report) {
  const ids = Object.keys(report.libraries);
  const colors = {};
  ids.forEach((id, i) => { colors[id] = COLORS[id] ?? FALLBACK[i % FALLBACK.length]; });
  const cells = report.cells;
  const trainIds = ids.filter((id) => cells.some((c) => c.results.train?.[id]));
  const width = Math.max(980, 120 + cells.length * Math.max(130, 26 * ids.length + 30));
  const plotX = 80;
  const plotW = width - plotX - 30;
  const panelH = 260;
  const legendRows = Math.ceil(ids.length / 3);
  let y = 78 + legendRows * 22 + 20;

  const body = [];
  const date = report.date.slice(0, 10);
  body.push(`<text x="${width / 2}" y="30" class="title" text-anchor="middle">GRU speed: fastgru beside onnxruntime-node, TensorFlow.js and PyTorch (GFLOP/s, higher is better)</text>`);
  body.push(`<text x="${width / 2}" y="52" class="subtitle" text-anchor="middle">${escape(`${date} · ${report.cpu}, ${report.cores} cores, ${report.platform} · Node ${report.node} · fastgru backend: ${report.backendInfo.backend} · median of round-robin runs, ${report.options.budgetSeconds} s budget per library`)}</text>`);
  ids.forEach((id, i) => {
    const lx = plotX + (i % 3) * (plotW / 3);
    const ly = 78 + Math.floor(i / 3) * 22;
    body.push(`<rect x="${lx}" y="${ly - 11}" width="14" height="14" fill="${colors[id]}"/>`);
    body.push(`<text x="${lx + 20}" y="${ly}" class="legend">${escape(report.libraries[id].label)}</text>`);
  });
  body.push(...panel({ x0: plotX, y0: y, width: plotW, height: panelH, title: 'Forward (FLOPs = 2·T·B·3H·(I+H))', cells, pass: 'forward', ids, colors }));
  y += panelH + 90;
  if (trainIds.length) {
    body.push(...panel({ x0: plotX, y0: y, width: plotW, height: panelH * 0.8, title: 'Forward + backward (3× the forward FLOPs)', cells, pass: 'train', ids: trainIds, colors }));
    y += panelH * 0.8 + 70;
  }
  const footnotes = [];
  if (cells.some((c) => Object.values(c.results).some((rs) => Object.values(rs).some((r) => r.note)))) {
    footnotes.push('† a single run (the first): it took longer than the slow-run limit, so it was not repeated');
  }
  if (ids.includes('tfjs') && cells.some((c) => c.form === 'after')) {
    footnotes.push('tfjs, reset after: tf.layers.gru refuses resetAfter: true, so those bars time the same cell written with tf ops; reset before is tf.layers.gru.');
  }
  const blas = report.versions?.pytorchBlas;
  if (ids.includes('pytorch')) {
    footnotes.push(`PyTorch: reset after is torch.nn.GRU, reset before the d2l chapter's GRU from scratch (per-step matmuls under autograd); BLAS: ${blas ?? 'unknown'}.`);
  }
  footnotes.push(`${report.command}`);
  for (const f of footnotes) {
    for (const line of wrap(f, Math.floor(width / 6.4))) {
      body.push(`<text x="${plotX - 50}" y="${y}" class="note">${escape(line)}</text>`);
      y += 15;
    }
  }
  const height = Math.ceil(y + 10);
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">
<style>
  .title { font-size: 17px; font-weight: bold; fill: #222; }
  .subtitle { font-size: 12px; fill: #555; }
  .panel { font-size: 14px; font-weight: bold; fill: #222; }
  .legend { font-size: 12px; fill: #222; }
  .tick { font-size: 11px; fill: #555; }
  .label { font-size: 12px; fill: #333; }
  .group { font-size: 11.5px; fill: #222; }
  .shape { font-size: 10.5px; fill: #666; }
  .value { font-size: 10px; fill: #222; }
  .na { font-size: 9px; fill: #999; }
  .note { font-size: 10.5px; fill: #555; }
  .grid { stroke: #e3e3e3; stroke-width: 1; }
  .axis { stroke: #444; stroke-width: 1; }
</style>
<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>
${body.join('\n')}
</svg>
`;
}

export function writeChart(jsonFile, svgFile) {
  const report = JSON.parse(readFileSync(jsonFile, 'utf8'));
  writeFileSync(svgFile, chartSvg(report));
  return svgFile;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  const json = process.argv[2] ?? `${dir}peers.json`;
  const svg = process.argv[3] ?? json.replace(/\.json$/, '.svg');
  console.log(`wrote ${writeChart(json, svg)}`);
}
