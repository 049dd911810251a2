/**
 * The benchmark chart: a hand-written SVG (no dependency) of one run's results, horizontal bars
 * grouped by level (store operations/s, HTTP requests/s per route), effect-sessions in one color,
 * the peers in another, raw drivers and no-session baselines in grey, each bar labelled with its
 * figure, and a footer with the machine, the date and the command.
 *
 * `tsx bench/chart.ts [bench/results/latest.json] [docs/bench.svg]` re-renders a committed run.
 */
import * as fs from "node:fs"
import { describeMachine, type Kind, readResults, type Results } from "./lib/results.js"

const colors: Record<Kind, string> = {
  ours: "#2563eb",
  peer: "#ea580c",
  raw: "#6b7280",
  baseline: "#a3a3a3"
}

const legend: ReadonlyArray<[Kind, string]> = [
  ["ours", "effect-sessions"],
  ["peer", "express-session and its stores"],
  ["raw", "raw driver (the backend's limit)"],
  ["baseline", "baseline: no sessions, or Effect.tryPromise around the raw driver"]
]

interface Bar {
  readonly label: string
  readonly kind: Kind
  readonly value: number
  readonly note?: string | undefined
  readonly void?: string | undefined
}

interface Group {
  readonly title: string
  readonly unit: string
  readonly bars: ReadonlyArray<Bar>
}

const escape = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

const formatNumber = (n: number): string =>
  n >= 100 ? Math.round(n).toLocaleString("en-US") : n >= 10 ? n.toFixed(1) : n.toFixed(2)

export const groups = (results: Results): ReadonlyArray<Group> => {
  const out: Array<Group> = []
  if (results.store.length > 0) {
    out.push({
      title: "Store level: operations/s (10,000 sessions of ~300 B, 80% load / 20% save, 64 in flight)",
      unit: "ops/s",
      bars: results.store.map((r) => ({
        label: r.name,
        kind: r.kind,
        value: r.opsPerSec,
        note: `p99 ${r.p99Ms < 1 ? r.p99Ms.toFixed(2) : r.p99Ms.toFixed(1)} ms`
      }))
    })
  }
  for (const route of ["count", "read"] as const) {
    const rows = results.http.filter((r) => r.route === route)
    if (rows.length === 0) continue
    out.push({
      title: route === "count"
        ? "HTTP: requests/s, route incrementing a counter in the session (50 connections, one session each)"
        : "HTTP: requests/s, read-only route, 4 s inactivity expiry, refresh after 2 s (store writes in the run)",
      unit: "req/s",
      bars: rows.map((r) => ({
        label: r.name,
        kind: r.kind,
        value: r.requestsPerSec,
        note: route === "read" && r.storeWrites !== undefined
          ? `${r.storeWrites.toLocaleString("en-US")} writes`
          : undefined,
        void: r.valid ? undefined : "void"
      }))
    })
  }
  if (results.memory.length > 0) {
    out.push({
      title: `Memory: heap bytes per session, ${
        results.memory[0].sessions.toLocaleString("en-US")
      } sessions after a GC (budget: 2 × JSON + 300 B), lower is better`,
      unit: "B",
      bars: results.memory.map((r) => ({
        label: r.name,
        kind: r.kind,
        value: r.heapPerSession,
        note: `budget ${Math.round(r.budgetBytes / r.sessions)} B`
      }))
    })
  }
  return out
}

export const render = (results: Results): string => {
  const width = 1200
  const labelWidth = 330
  const barMax = 520
  const barHeight = 18
  const gap = 6
  const left = 20
  const parts: Array<string> = []
  let y = 34
  parts.push(
    `<text x="${left}" y="${y}" font-size="20" font-weight="600">effect-sessions vs express-session: one run, one machine</text>`
  )
  y += 26
  let lx = left
  for (const [kind, text] of legend) {
    parts.push(`<rect x="${lx}" y="${y - 11}" width="14" height="14" fill="${colors[kind]}"/>`)
    parts.push(`<text x="${lx + 20}" y="${y}" font-size="13">${escape(text)}</text>`)
    lx += 40 + text.length * 7
  }
  y += 18
  for (const group of groups(results)) {
    y += 22
    parts.push(`<text x="${left}" y="${y}" font-size="14" font-weight="600">${escape(group.title)}</text>`)
    y += 10
    const max = Math.max(1, ...group.bars.map((b) => b.value))
    for (const bar of group.bars) {
      const w = Math.max(1, (bar.value / max) * barMax)
      const x = left + labelWidth
      parts.push(
        `<text x="${x - 8}" y="${y + barHeight - 4}" font-size="13" text-anchor="end">${escape(bar.label)}</text>`
      )
      parts.push(
        bar.void !== undefined
          ? `<rect x="${x}" y="${y}" width="${
            w.toFixed(1)
          }" height="${barHeight}" fill="none" stroke="#dc2626" stroke-dasharray="4 3"/>`
          : `<rect x="${x}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${colors[bar.kind]}"/>`
      )
      const figure = `${formatNumber(bar.value)} ${group.unit}${bar.note !== undefined ? ` · ${bar.note}` : ""}${
        bar.void !== undefined ? " · VOID (see the results JSON)" : ""
      }`
      parts.push(
        `<text x="${x + w + 6}" y="${y + barHeight - 4}" font-size="12" fill="${
          bar.void !== undefined ? "#dc2626" : "#111"
        }">${escape(figure)}</text>`
      )
      y += barHeight + gap
    }
  }
  if (results.missing.length > 0) {
    y += 8
    for (const m of results.missing) {
      y += 16
      parts.push(
        `<text x="${left}" y="${y}" font-size="12" fill="#6b7280">Not measured: ${
          escape(`${m.name}: ${m.reason}`)
        }</text>`
      )
    }
  }
  y += 28
  parts.push(`<line x1="${left}" y1="${y - 16}" x2="${width - left}" y2="${y - 16}" stroke="#d4d4d4"/>`)
  const load = (key: string) => {
    const v = results.settings[key]
    return Array.isArray(v) && typeof v[0] === "number" ? v[0].toFixed(2) : "?"
  }
  parts.push(
    `<text x="${left}" y="${y}" font-size="12" fill="#404040">${
      escape(
        `${describeMachine(results.machine)} · 1-min load average ${load("loadAverageAtStart")} at start, ${
          load("loadAverageAtEnd")
        } at end`
      )
    }</text>`
  )
  y += 17
  parts.push(
    `<text x="${left}" y="${y}" font-size="12" fill="#404040">${escape(results.date)} · ${escape(results.command)} · ${
      Math.round(results.elapsedSeconds)
    } s</text>`
  )
  y += 16
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...parts,
    `</svg>`,
    ``
  ].join("\n")
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const input = process.argv[2] ?? "bench/results/latest.json"
  const output = process.argv[3] ?? "docs/bench.svg"
  const results = readResults(input)
  fs.writeFileSync(output, render(results))
  console.log(`wrote ${output}`)
}
