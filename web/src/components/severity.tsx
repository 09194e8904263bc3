import type { Severity } from '../types';

/** Severity as a word as well as a colour: colour alone fails people who do not see it. */
export function SeverityPill({ severity }: { severity: Severity }) {
  return <span class={`pill sev-${severity}`}>{severity}</span>;
}
