/** The perplexity curve of examples/char-lm as an SVG line chart: fastgru's forms, and PyTorch's when given. */
import { writeFileSync } from 'node:fs';

const COLORS = { after: '#1f77b4', before: '#2ca02c' };

export function writeCurve(file, fastgru, pytorch) {
  const series = [];
  for (const [form, r] of Object.entries(fastgru.forms)) series.push({ label: `fastgru, resetAfter ${form === 'after'}`, color: COLORS[form], dash: '', ys: r.perplexity });
  for (const [form, r] of Object.entries(pytorch?.forms ?? {})) series.push({ label: `PyTorch, resetAfter ${form === 'after'}`, color: COLORS[form], dash: '6 4', ys: r.perplexity });
  const W = 640, H = 360, L = 56, R = 16, T = 28, B = 44;
  const epochs = Math.max(...series.map((s) => s.ys.length));
  const maxY = Math.max(...series.flatMap((s) => s.ys));
  const minY = Math.min(...series.flatMap((s) => s.ys));
  const lo = Math.max(0, Math.floor(minY - 0.5));
  const hi = Math.ceil(maxY + 0.5);
  const x = (e) => L + ((W - L - R) * (e - 1)) / Math.max(1, epochs - 1);
  const y = (v) => T + ((H - T - B) * (hi - v)) / (hi - lo);
  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="14">Character language model: perplexity per epoch</text>`);
  const step = Math.max(1, Math.ceil((hi - lo) / 8));
  for (let v = lo; v <= hi; v += step) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`);
  }
  const estep = Math.max(1, Math.ceil(epochs / 10));
  for (let e = 1; e <= epochs; e += estep) parts.push(`<text x="${x(e)}" y="${H - B + 16}" text-anchor="middle">${e}</text>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">epoch</text>`);
  parts.push(`<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(T + H - B) / 2})">perplexity</text>`);
  series.forEach((s, i) => {
    const pts = s.ys.map((v, k) => `${x(k + 1).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2" stroke-dasharray="${s.dash}"/>`);
    const ly = T + 14 + i * 16;
    parts.push(`<line x1="${W - R - 190}" x2="${W - R - 166}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2" stroke-dasharray="${s.dash}"/>`);
    parts.push(`<text x="${W - R - 160}" y="${ly}">${s.label}</text>`);
  });
  parts.push('</svg>');
  writeFileSync(file, `${parts.join('\n')}\n`);
}
