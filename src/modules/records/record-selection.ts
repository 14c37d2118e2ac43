import { Kind, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

/**
 * What a query reads of a record: its selected fields, and for each selected object field (owner, account) that
 * object's selected fields. The record services read only those columns and embed those objects in the same
 * statement; a field they do not know as a column makes them read every column.
 */
export interface RecordSelection {
  fields: ReadonlySet<string>;
  related: ReadonlyMap<string, ReadonlySet<string>>;
}

/** Field name -> the selection sets under it, through inline and named fragments (directives are not evaluated). */
function fieldsUnder(
  info: GraphQLResolveInfo,
  sets: readonly SelectionSetNode[],
): Map<string, SelectionSetNode[]> {
  const found = new Map<string, SelectionSetNode[]>();
  const seen = new Set<string>();
  const visit = (set: SelectionSetNode) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        const under = found.get(selection.name.value) ?? [];
        if (selection.selectionSet) under.push(selection.selectionSet);
        found.set(selection.name.value, under);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        visit(selection.selectionSet);
      } else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = info.fragments[selection.name.value];
        if (fragment) visit(fragment.selectionSet);
      }
    }
  };
  sets.forEach(visit);
  return found;
}

/** The selection of the record at `path` below the field being resolved (`['items']` for a page's records). */
export function recordSelection(info: GraphQLResolveInfo, path: readonly string[] = []): RecordSelection {
  let sets = info.fieldNodes.flatMap((node) => (node.selectionSet ? [node.selectionSet] : []));
  for (const name of path) sets = fieldsUnder(info, sets).get(name) ?? [];
  const fields = fieldsUnder(info, sets);
  const related = new Map<string, ReadonlySet<string>>();
  for (const [name, under] of fields)
    if (under.length > 0) related.set(name, new Set(fieldsUnder(info, under).keys()));
  return { fields: new Set(fields.keys()), related };
}
