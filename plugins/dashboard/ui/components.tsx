// Shared pieces: data loading with loading, empty and error states; tables; figures; charts (uPlot).

import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api } from './api.ts';

export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload(): void;
}

export function useApi<T>(path: string | undefined): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: Error | undefined; loading: boolean }>({ data: undefined, error: undefined, loading: path !== undefined });
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    if (path === undefined) return;
    let live = true;
    setState((previous) => ({ ...previous, loading: true, error: undefined }));
    api<T>(path).then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error: Error) => live && setState({ data: undefined, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [path, generation]);
  const reload = useCallback(() => setGeneration((value) => value + 1), []);
  return { ...state, reload };
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p class="loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      {label}
    </p>
  );
}

export function ErrorBox({ error }: { error: Error | string }) {
  return (
    <div class="error" role="alert">
      {typeof error === 'string' ? error : error.message}
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

/** Renders a load's content once it arrived, and its loading or error state before. */
export function Async<T>({ state, children }: { state: Loaded<T>; children: (data: T) => ComponentChildren }) {
  if (state.error) return <ErrorBox error={state.error} />;
  if (state.loading || state.data === undefined) return <Loading />;
  return <>{children(state.data)}</>;
}

export interface Column<Row> {
  label: string;
  render: (row: Row) => ComponentChildren;
  numeric?: boolean;
}

export function Table<Row>({ caption, columns, rows, empty }: { caption: string; columns: Array<Column<Row>>; rows: Row[]; empty: string }) {
  if (rows.length === 0) return <Empty>{empty}</Empty>;
  return (
    <div class="table-wrap">
      <table>
        <caption>{caption}</caption>
        <thead>
          <tr>
            {columns.map((column) => (
              <th scope="col" class={column.numeric ? 'num' : undefined}>
                {column.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr>
              {columns.map((column) => (
                <td class={column.numeric ? 'num' : undefined}>{column.render(row)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Stat({ label, value, detail }: { label: string; value: string; detail?: string }) {
  return (
    <div class="stat">
      <div class="stat-label">{label}</div>
      <div class="stat-value">{value}</div>
      {detail ? <div class="stat-detail">{detail}</div> : null}
    </div>
  );
}

export function Section({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section class="card" aria-label={title}>
      <header class="card-head">
        <h2>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}

export function Notice({ children }: { children: ComponentChildren }) {
  return <p class="notice">{children}</p>;
}

export function Field({ label, children, hint }: { label: string; children: ComponentChildren; hint?: string }) {
  return (
    <label class="field">
      <span>{label}</span>
      {children}
      {hint ? <small>{hint}</small> : null}
    </label>
  );
}

export function Badge({ tone, children }: { tone: 'good' | 'warn' | 'bad' | 'plain'; children: ComponentChildren }) {
  return <span class={`badge ${tone}`}>{children}</span>;
}

/** Steps between ticks on an axis of counts: 1, 2, 5, 10, 20, 50…, never a fraction of a request. */
const WHOLE_STEPS = Array.from({ length: 16 }, (_, exponent) => [1, 2, 5].map((step) => step * 10 ** exponent)).flat();

/** The chart's width: its box's, so it never pushes a narrow screen sideways (a floor only if it has none yet). */
const chartWidth = (element: HTMLElement): number => Math.max(200, element.clientWidth);

/**
 * A series chart: x are UTC seconds, each series one line (or bars). `whole`: the values are counts,
 * so the value axis steps by whole numbers (0.5 steps printed as whole numbers read "1, 1, 2, 2").
 */
export function Chart({
  title,
  x,
  series,
  unit,
  format,
  whole = false,
}: {
  title: string;
  x: number[];
  series: Array<{ label: string; values: Array<number | null> }>;
  unit: string;
  format: (value: number) => string;
  whole?: boolean;
}) {
  const holder = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = holder.current;
    if (element === null || x.length === 0) return;
    const style = getComputedStyle(document.documentElement);
    const ink = style.getPropertyValue('--muted').trim() || '#888';
    const colors = ['--accent', '--accent-2', '--accent-3', '--accent-4'].map((name) => style.getPropertyValue(name).trim() || '#4f7cff');
    const axis = { stroke: ink, grid: { stroke: 'rgba(128,128,128,0.15)' }, ticks: { stroke: 'rgba(128,128,128,0.3)' } };
    const plot = new uPlot(
      {
        width: chartWidth(element),
        height: 220,
        axes: [
          axis,
          { ...axis, label: unit, size: 80, incrs: whole ? WHOLE_STEPS : undefined, values: (_plot: uPlot, splits: number[]) => splits.map((value) => format(value)) },
        ],
        scales: { y: { range: (_plot: uPlot, _min: number, max: number) => [0, max > 0 ? max * 1.15 : 1] } },
        series: [
          { value: (_plot: uPlot, value: number | null) => (value === null ? '–' : new Date(value * 1000).toLocaleDateString()) },
          ...series.map((line, index) => ({
            label: line.label,
            stroke: colors[index % colors.length],
            width: 2,
            fill: index === 0 ? 'rgba(79,124,255,0.12)' : undefined,
            value: (_plot: uPlot, value: number | null) => (value === null ? '–' : format(value)),
          })),
        ],
        legend: { show: series.length > 1 },
      },
      [x, ...series.map((line) => line.values)] as uPlot.AlignedData,
      element,
    );
    const resize = () => plot.setSize({ width: chartWidth(element), height: 220 });
    window.addEventListener('resize', resize);
    return () => {
      window.removeEventListener('resize', resize);
      plot.destroy();
    };
  }, [x, series, unit, format, whole]);
  if (x.length === 0) return <Empty>No data for this period yet.</Empty>;
  return <div class="chart" ref={holder} role="img" aria-label={title} />;
}

export function useForm<T extends Record<string, string>>(initial: T): [T, (name: keyof T) => (event: JSX.TargetedEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>) => void, (next: T) => void] {
  const [values, setValues] = useState(initial);
  const bind = (name: keyof T) => (event: JSX.TargetedEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>) =>
    setValues((previous) => ({ ...previous, [name]: event.currentTarget.value }));
  return [values, bind, setValues];
}

/** Runs an action, keeping its error and busy state for the form that started it. */
export function useAction(): { busy: boolean; error: string | undefined; run(action: () => Promise<void>): Promise<void> } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  return {
    busy,
    error,
    async run(action) {
      setBusy(true);
      setError(undefined);
      try {
        await action();
      } catch (failure) {
        setError(failure instanceof Error ? failure.message : String(failure));
      } finally {
        setBusy(false);
      }
    },
  };
}
