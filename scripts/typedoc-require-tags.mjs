/**
 * A typedoc plugin (typedoc.json's "plugin"), in two parts.
 *
 * Static methods attached by a room: src/serve/ and src/io/ add GRU.fromShared and
 * GRU.fromSafetensors by module augmentation, which TypeScript can only express as a namespace
 * merged with the class (`namespace GRU { function fromShared(...) }`). typedoc would render that
 * namespace as a page of its own, beside the class; this moves its functions onto the class as
 * static methods, where a reader of the GRU page looks for them.
 *
 * Required tags: typedoc's own validation asks only that a comment exists. This asks what the API
 * reference needs of every exported function, method and constructor declared in src/: a @param
 * for each parameter, @returns unless it returns nothing (void, Promise<void>, a constructor), and
 * @throws (naming the error class and its code) when it takes arguments, since every such call
 * checks them. Two kinds are exempt from @throws, as they check nothing: an error class's
 * constructor (it only stores its message), and a protected method (a subclass's hook, called by
 * the class's own code with arguments that code has already checked). Each gap is a warning, which
 * treatWarningsAsErrors turns into a failed `npm run docs`.
 */
import { Converter, ReflectionFlag, ReflectionKind } from 'typedoc';

const CALLABLE = ReflectionKind.Function | ReflectionKind.Method | ReflectionKind.Constructor;

const returnsNothing = (type) => {
  const s = type?.toString() ?? 'void';
  return s === 'void' || s === 'Promise<void>' || s === 'undefined';
};

/** Whether a class is Error or derives from it (through classes of the project, or directly). */
function isErrorClass(cls) {
  return (cls?.extendedTypes ?? []).some((t) => t.name === 'Error' || isErrorClass(t.reflection));
}

/** Moves the functions of a namespace merged with a class of the same name onto the class, as static methods. */
function mergeNamespacesIntoClasses(project) {
  for (const ns of project.getReflectionsByKind(ReflectionKind.Namespace)) {
    const cls = ns.parent?.children?.find((c) => c !== ns && c.name === ns.name && c.kindOf(ReflectionKind.Class));
    if (!cls || !(ns.children ?? []).every((c) => c.kindOf(ReflectionKind.Function))) continue;
    for (const fn of ns.children ?? []) {
      fn.kind = ReflectionKind.Method;
      fn.setFlag(ReflectionFlag.Static, true);
    }
    project.mergeReflections(ns, cls);
  }
}

/** @param {import('typedoc').Application} app */
export function load(app) {
  // Before typedoc groups the children and resolves links, so the methods are listed and linked on the class.
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => mergeNamespacesIntoClasses(context.project), 1000);

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
        const checksNothing = refl.flags.isProtected || (isCtor && isErrorClass(refl.parent));
        if (!checksNothing && (sig.parameters?.length ?? 0) > 0 && !sig.comment.getTag('@throws')) app.logger.warn(`${where}: no @throws`);
      }
    }
  });
}
