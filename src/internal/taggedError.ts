/**
 * `TaggedError(tag)<Fields>()` is `Data.TaggedError(tag)<Fields>` with a precise constructor type, so the
 * emitted declarations carry no `any` (Data's own base class is declared with `Record<string, any>`).
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import * as Data from "effect/Data"

export type TaggedErrorClass<Tag extends string, Fields extends object> = new(
  args: Fields
) => Cause.YieldableError & { readonly _tag: Tag } & Readonly<Fields>

export const TaggedError = <Tag extends string>(tag: Tag) => <Fields extends object>(): TaggedErrorClass<Tag, Fields> =>
  Data.TaggedError(tag) as unknown as TaggedErrorClass<Tag, Fields>
