/**
 * A typedoc plugin (typedoc.json's "plugin"): typedoc's own validation asks only that a comment
 * exists. This asks what the API reference needs of every exported function, method and
 * constructor declared in src/: a @param for each parameter, @returns unless it returns nothing
 * (void, Promise<void>, a constructor), and @throws (naming the error class and its code) when it
 * takes arguments, since every such call checks them. Each gap is a warning, which
 * treatWarningsAsErrors turns into a failed `npm run docs`.
 */
import { Converter, ReflectionKind } from 'typedoc';

const CALLABLE = ReflectionKind.Function | ReflectionKind.Method | ReflectionKind.Constructor;

const returnsNothing = (type) => {
  const s = type?.toString() ?? 'void';
  return s === 'void' || s === 'Promise<void>' || s === 'undefined';
};

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_END, (context) => {
    for (const refl of context.project.getReflectionsByKind(CALLABLE)) {
      const own = (refl.sources ?? []).some((s) => /(^|\/)src\//.test(s.fullFileName ?? s.fileName));
      if (!own || refl.flags.isExternal || refl.flags.isPrivate || refl.inheritedFrom) continue;
      for (const sig of refl.signatures ?? []) {
        const name = sig.getFriendlyFullName();
        const where = `${name}, defined in ${refl.sources?.[0]?.fileName ?? '?'}`;
        if (!sig.comment) continue; // typedoc's notDocumented reports it
        for (const p of sig.parameters ?? []) {
          if (!p.comment || p.comment.summary.length === 0) app.logger.warn(`${where}: no @param for ${p.name}`);
        }
        const isCtor = refl.kindOf(ReflectionKind.Constructor);
        if (!isCtor && !returnsNothing(sig.type) && !sig.comment.getTag('@returns')) app.logger.warn(`${where}: no @returns`);
        if ((sig.parameters?.length ?? 0) > 0 && !sig.comment.getTag('@throws')) app.logger.warn(`${where}: no @throws`);
      }
    }
  });
}
