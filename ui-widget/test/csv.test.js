// @vitest-environment jsdom
// The CSV downloads (src/csv.js): RFC 4180 text read back by a reader of its own, the
// columns of the workflow table and the series, file names, and the download link.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { csvField, csvFileName, downloadCsv, percentileKeys, seriesCsv, toCsv, workflowsCsv } from '../src/csv.js';

/** A small RFC 4180 reader: records of fields; every record must end in CRLF. */
function readCsv(text) {
  const records = [];
  let i = 0;
  while (i < text.length) {
    const fields = [];
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        i++;
        for (;;) {
          if (i >= text.length) throw new Error('unclosed quote');
          if (text[i] === '"' && text[i + 1] === '"') {
            field += '"';
            i += 2;
          } else if (text[i] === '"') {
            i++;
            break;
          } else field += text[i++];
        }
      } else {
        while (i < text.length && !',\r\n'.includes(text[i])) {
          if (text[i] === '"') throw new Error('quote in an unquoted field');
          field += text[i++];
        }
      }
      fields.push(field);
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text.slice(i, i + 2) !== '\r\n') throw new Error(`record not ended by CRLF at ${i}`);
      i += 2;
      break;
    }
    records.push(fields);
  }
  return records;
}

const answer = {
  tenant_id: 't1',
  workflow_id: null,
  status: 'all',
  start_date: '2026-11-21T00:00:00Z',
  end_date: '2026-11-28T00:00:00Z',
  count: 4,
  failed: 1,
  avg_ms: 812.4,
  median_ms: 790.1,
  min_ms: 3,
  max_ms: 92000,
  percentiles: { p50: 790.1, p95: 2100.000001, 'p99.9': 5000.3 },
  interval: 'day',
  series: [
    { bucket_start: '2026-11-21T00:00:00Z', count: 4, failed: 1, avg_ms: 812.4, min_ms: 3, max_ms: 92000, percentiles: { p50: 790.1, p95: 2100.000001, 'p99.9': 5000.3 } },
    { bucket_start: '2026-11-22T00:00:00Z', count: 0, failed: 0, avg_ms: null, min_ms: null, max_ms: null, percentiles: { p50: null, p95: null, 'p99.9': null } },
  ],
  workflows: [
    { workflow_id: 'wf,"odd"\nname', count: 3, failed: 1, avg_ms: 0.001, median_ms: 790.1, min_ms: 3, max_ms: 92000, percentiles: { p50: 790.1, p95: 2100.000001, 'p99.9': 5000.3 } },
    { workflow_id: '9001', count: 1, failed: 0, avg_ms: 1e-6, median_ms: null, min_ms: 0, max_ms: 0, percentiles: {} },
  ],
};

describe('csvField quotes as RFC 4180 asks', () => {
  it('leaves plain text and numbers alone', () => {
    expect(csvField('wf-1')).toBe('wf-1');
    expect(csvField(812.4)).toBe('812.4');
    expect(csvField(0)).toBe('0');
  });
  it('quotes commas, quotes and line breaks, doubling quotes', () => {
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\r\nlines')).toBe('"two\r\nlines"');
  });
  it('writes null, absent and non-finite values as empty fields', () => {
    expect(csvField(null)).toBe('');
    expect(csvField(undefined)).toBe('');
    expect(csvField(Number.NaN)).toBe('');
  });
  it('ends every record, the last one too, with CRLF', () => {
    expect(toCsv(['a', 'b'], [[1, 'x,y']])).toBe('a,b\r\n1,"x,y"\r\n');
  });
});

describe('the workflow table as CSV', () => {
  it('has a header with the percentiles in the answer and one row per workflow', () => {
    const rows = readCsv(workflowsCsv(answer));
    expect(rows[0]).toEqual(['tenant_id', 'workflow_id', 'count', 'failed', 'avg_ms', 'median_ms', 'min_ms', 'max_ms', 'p50', 'p95', 'p99.9']);
    expect(rows).toHaveLength(3);
    expect(rows[1]).toEqual(['t1', 'wf,"odd"\nname', '3', '1', '0.001', '790.1', '3', '92000', '790.1', '2100.000001', '5000.3']);
    expect(rows[2]).toEqual(['t1', '9001', '1', '0', '0.000001', '', '0', '0', '', '', '']);
  });
  it('holds the numbers exactly: each field reads back as the same double', () => {
    const rows = readCsv(workflowsCsv(answer));
    answer.workflows.forEach((w, i) => {
      expect(Number(rows[i + 1][4])).toBe(w.avg_ms);
      expect(Number(rows[i + 1][9] || Number.NaN)).toBe(w.percentiles.p95 ?? Number.NaN);
    });
  });
  it('is a header alone when there are no workflows', () => {
    expect(workflowsCsv({ ...answer, workflows: undefined })).toBe('tenant_id,workflow_id,count,failed,avg_ms,median_ms,min_ms,max_ms,p50,p95,p99.9\r\n');
  });
});

describe('the series as CSV', () => {
  it('has one row per bucket, empty buckets with empty statistics', () => {
    const rows = readCsv(seriesCsv(answer));
    expect(rows[0]).toEqual(['tenant_id', 'workflow_id', 'bucket_start', 'count', 'failed', 'avg_ms', 'min_ms', 'max_ms', 'p50', 'p95', 'p99.9']);
    expect(rows[1]).toEqual(['t1', '', '2026-11-21T00:00:00Z', '4', '1', '812.4', '3', '92000', '790.1', '2100.000001', '5000.3']);
    expect(rows[2]).toEqual(['t1', '', '2026-11-22T00:00:00Z', '0', '0', '', '', '', '', '', '']);
  });
  it('names the workflow when the view is one workflow', () => {
    const rows = readCsv(seriesCsv({ ...answer, workflow_id: 'wf-2' }));
    expect(rows[1][1]).toBe('wf-2');
  });
});

describe('file names', () => {
  it('carry tenant, kind and range without colons', () => {
    expect(csvFileName('workflows', answer)).toBe('exectime-t1-workflows-20261121T0000Z-20261128T0000Z.csv');
  });
  it('carry the workflow, with unsafe characters replaced', () => {
    expect(csvFileName('series', { ...answer, tenant_id: 'acme/eu', workflow_id: 'nightly sync:v2' })).toBe(
      'exectime-acme_eu-nightly_sync_v2-series-20261121T0000Z-20261128T0000Z.csv',
    );
  });
  it('read the percentile keys in the answer order', () => {
    expect(percentileKeys(answer)).toEqual(['p50', 'p95', 'p99.9']);
    expect(percentileKeys({})).toEqual([]);
  });
});

describe('downloadCsv', () => {
  afterEach(() => vi.restoreAllMocks());
  it('clicks a temporary link to a CSV Blob with the file name, then lets the URL go', async () => {
    vi.useFakeTimers();
    const blobs = [];
    const created = vi.spyOn(URL, 'createObjectURL').mockImplementation((blob) => {
      blobs.push(blob);
      return 'blob:test/1';
    });
    const revoked = vi.spyOn(URL, 'revokeObjectURL').mockImplementation(() => {});
    const parent = document.createElement('div');
    document.body.appendChild(parent);
    let clicked = null;
    parent.addEventListener('click', (e) => {
      e.preventDefault(); // jsdom does not navigate; keep it from trying
      clicked = { href: e.target.getAttribute('href'), download: e.target.download };
    });
    downloadCsv('a,b\r\n', 'x.csv', parent);
    expect(created).toHaveBeenCalledOnce();
    expect(blobs[0].type).toBe('text/csv;charset=utf-8');
    expect(await blobs[0].text()).toBe('a,b\r\n');
    expect(clicked).toEqual({ href: 'blob:test/1', download: 'x.csv' });
    expect(parent.children).toHaveLength(0);
    expect(revoked).not.toHaveBeenCalled();
    vi.advanceTimersByTime(30_000);
    expect(revoked).toHaveBeenCalledWith('blob:test/1');
    vi.useRealTimers();
  });
});
