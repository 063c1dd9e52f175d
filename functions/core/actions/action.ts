import type { z } from 'zod';
import type { CaseRecord } from '../cases.js';
import { changesOf } from '../containment.js';

/**
 * One containment action: what one containment step changes on an instance, the record of it that the
 * step saves on the case before it changes anything, and how Release restores it. Listed, in Release's
 * order, in `functions/core/containment-actions.ts`.
 */
export interface ContainmentAction<T = unknown> {
  /** The key under which the step saves its changes on the case (`changeKeys`). */
  readonly key: string;
  /** The step (its `functions:` key in serverless.yml) that applies the action and saves its changes. */
  readonly step: string;
  /** What the action changes, in a few words. */
  readonly description: string;
  /** The shape of the saved changes, checked when they are read back. */
  readonly schema: z.ZodType;
  /** The action's saved changes on a case; a record that does not parse counts as none. */
  read(record: Pick<CaseRecord, 'changes'> | undefined): T | undefined;
}

/** An action from its parts, reading its changes with its own key and schema. */
export function containmentAction<S extends z.ZodType>(
  parts: Omit<ContainmentAction<z.infer<S>>, 'read' | 'schema'> & { schema: S },
): ContainmentAction<z.infer<S>> & { readonly schema: S } {
  return { ...parts, read: (record) => changesOf(record, parts.key, parts.schema) };
}
