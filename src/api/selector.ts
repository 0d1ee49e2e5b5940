/** metav1.LabelSelector: reading with the API server's validation, and matching. */
import type { Field } from "./context.js";
import { readLabels } from "./meta.js";
import type { LabelSelector, LabelSelectorRequirement } from "./types.js";
import { labelValue, qualifiedName } from "./validate.js";

const OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist"] as const;

/** Reads a label selector; an unset field reads as the empty selector (check `f.set` to tell them apart). */
export function readSelector(f: Field): LabelSelector {
  const m = f.map();
  const sel: LabelSelector = { matchLabels: readLabels(m.get("matchLabels")), matchExpressions: [] };
  for (const e of m.get("matchExpressions").list()) {
    const em = e.map();
    const keyF = em.get("key");
    const key = keyF.str();
    if (key === undefined) keyF.required();
    else {
      const errs = qualifiedName(key);
      if (errs.length > 0) keyF.error(`invalid label key ${JSON.stringify(key)}: ${errs.join("; ")}`);
    }
    const opF = em.get("operator");
    const op = opF.oneOf(OPERATORS);
    if (!opF.set) opF.required();
    const valuesF = em.get("values");
    const values: string[] = [];
    for (const v of valuesF.list()) {
      const s = v.str();
      if (s === undefined) continue;
      const errs = labelValue(s);
      if (errs.length > 0) v.error(`invalid label value ${JSON.stringify(s)}: ${errs.join("; ")}`);
      values.push(s);
    }
    if ((op === "In" || op === "NotIn") && values.length === 0) {
      valuesF.required(
        "Required value: must be specified when `operator` is 'In' or 'NotIn'",
        "list at least one value, or use operator Exists",
      );
    }
    if ((op === "Exists" || op === "DoesNotExist") && values.length > 0) {
      valuesF.error(
        "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        "remove values",
      );
    }
    if (key !== undefined && op !== undefined) sel.matchExpressions.push({ key, operator: op, values });
  }
  return sel;
}

export function isEmptySelector(s: LabelSelector): boolean {
  return Object.keys(s.matchLabels).length === 0 && s.matchExpressions.length === 0;
}

function matchesRequirement(r: LabelSelectorRequirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  switch (r.operator) {
    case "In":
      return has && r.values.includes(labels[r.key] as string);
    case "NotIn":
      return !has || !r.values.includes(labels[r.key] as string);
    case "Exists":
      return has;
    case "DoesNotExist":
      return !has;
  }
}

/** True when `labels` satisfy the selector. The empty selector matches everything. */
export function matchesSelector(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const k in selector.matchLabels) {
    if (!Object.hasOwn(labels, k) || labels[k] !== selector.matchLabels[k]) return false;
  }
  for (const r of selector.matchExpressions) if (!matchesRequirement(r, labels)) return false;
  return true;
}
