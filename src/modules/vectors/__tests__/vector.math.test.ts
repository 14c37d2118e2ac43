import type { FieldViolation } from '../../../platform/errors/app-error';
import { dotAt, HashingEmbedder, TopK } from '../vector.math';
import { classifyDocId, metadataMatches, normalizedVector } from '../vector.model';

describe('TopK', () => {
  it('keeps exactly the best `capacity` of a stream, best first', () => {
    let seed = 7;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const scores = Array.from({ length: 5000 }, random);
    const top = new TopK<number>(25);
    scores.forEach((score, i) => top.push(score, i));
    const expected = scores
      .map((score, i) => ({ score, item: i }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 25);
    expect(top.sorted()).toEqual(expected);
    expect(top.threshold).toBe(expected[24]!.score);
  });

  it('holds fewer when fewer arrive, and nothing at capacity 0', () => {
    const top = new TopK<string>(10);
    top.push(0.5, 'a');
    top.push(0.9, 'b');
    expect(top.sorted().map((entry) => entry.item)).toEqual(['b', 'a']);
    expect(top.threshold).toBe(-Infinity);
    const none = new TopK<string>(0);
    none.push(1, 'x');
    expect(none.size).toBe(0);
  });
});

describe('dotAt', () => {
  it('is the dot product with the row at the offset, for lengths not divisible by 4', () => {
    const query = Float32Array.from([1, 2, 3, 4, 5]);
    const matrix = Float32Array.from([9, 9, 9, 9, 9, 1, 0, 1, 0, 2]);
    expect(dotAt(query, matrix, 5)).toBe(1 + 3 + 10);
  });
});

describe('HashingEmbedder', () => {
  const embedder = new HashingEmbedder();
  const cos = (a: Float32Array, b: Float32Array) => dotAt(a, b, 0);

  it('is deterministic and unit length', () => {
    const a = embedder.embed('Acme Corp renewal, Q3', 64)!;
    const b = embedder.embed('Acme Corp renewal, Q3', 64)!;
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(cos(a, a)).toBeCloseTo(1, 5);
  });

  it('puts shared wording and typos closer than unrelated text', () => {
    const query = embedder.embed('warehouse automation pilot', 256)!;
    const close = embedder.embed('pilot for warehouse automation robots', 256)!;
    const typo = embedder.embed('warehose automaton pilot', 256)!;
    const far = embedder.embed('quarterly dental insurance invoice', 256)!;
    expect(cos(query, close)).toBeGreaterThan(cos(query, far) + 0.3);
    expect(cos(query, typo)).toBeGreaterThan(cos(query, far) + 0.3);
  });

  it('returns nothing for text without letters or digits', () => {
    expect(embedder.embed(' ?! -- ', 32)).toBeUndefined();
  });
});

describe('vector input rules', () => {
  it('normalises a vector and names each broken rule', () => {
    const violations: FieldViolation[] = [];
    expect(Array.from(normalizedVector('v', [3, 4], 2, violations))).toEqual([
      0.6000000238418579, 0.800000011920929,
    ]);
    normalizedVector('a', [1, 2, 3], 2, violations);
    normalizedVector('b', [0, 0], 2, violations);
    normalizedVector('c', [1, Number.NaN], 2, violations);
    normalizedVector('d', [Number.NEGATIVE_INFINITY, 1], 2, violations);
    expect(violations.map((v) => v.field)).toEqual(['a', 'b', 'c[1]', 'd[0]']);
  });

  it('tells record documents from free ones by their id', () => {
    const id = '0b6c3a7e-5f7e-4f4a-9d7e-2b1c0d9e8f7a';
    expect(classifyDocId(`deal:${id}`)).toEqual({ docId: `deal:${id}`, entityType: 'DEAL', recordId: id });
    // One spelling per record, so two casings cannot make two vectors of one lead.
    expect(classifyDocId(`LEAD:${id.toUpperCase()}`)).toEqual({
      docId: `lead:${id}`,
      entityType: 'LEAD',
      recordId: id,
    });
    expect(classifyDocId('kb/article-12')).toEqual({
      docId: 'kb/article-12',
      entityType: 'DOCUMENT',
      recordId: null,
    });
  });

  it('matches metadata filters by type and value', () => {
    expect(metadataMatches({ tier: 5 }, [{ key: 'tier', values: [5] }])).toBe(true);
    expect(metadataMatches({ tier: 5 }, [{ key: 'tier', values: ['5'] }])).toBe(false);
    expect(
      metadataMatches({ tier: 5, lang: 'en' }, [
        { key: 'tier', values: [4, 5] },
        { key: 'lang', values: ['de'] },
      ]),
    ).toBe(false);
  });
});
