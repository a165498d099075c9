// Annotation loaders for the composed-retrieval benchmarks (lib, pure TypeScript, synchronous file
// reads): CIRR rc2 (captions/cap.rc2.<split>.json + image_splits/split.rc2.<split>.json), FashionIQ
// (captions/cap.<category>.<split>.json + image_splits/split.<category>.<split>.json), GeneCIS JSON.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, isRecord } from '../args';
import { VlkError } from '../errors';

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new VlkError('ERR_VLK_IO', `${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new VlkError('ERR_VLK_CORRUPT', `${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

function corrupt(file: string, where: string, what: string, got: unknown): VlkError {
  return new VlkError('ERR_VLK_CORRUPT', `${file}: ${where}: expected ${what}, got ${describe(got)}`);
}

function str(file: string, where: string, v: unknown): string {
  if (typeof v !== 'string') throw corrupt(file, where, 'a string', v);
  return v;
}

/** One CIRR query. */
export interface CirrQuery {
  pairId: number;
  reference: string;
  caption: string;
  /** `target_hard`; null in test1 (hidden). */
  target: string | null;
  /** `target_soft`: candidate name -> graded label (empty in test1). */
  targetSoft: Record<string, number>;
  setId: number;
  /** `img_set.members`: 6 names, the reference among them. */
  members: string[];
}

/** A CIRR split: its queries and its gallery (the image names of image_splits, in file order). */
export interface CirrSplit {
  split: string;
  queries: CirrQuery[];
  gallery: string[];
  /** Name -> relative image path, as image_splits gives them. */
  images: Record<string, string>;
}

/**
 * Loads a CIRR rc2 split ('val', 'test1'; 'train' when its captions file is present) from the
 * annotation folder (captions/, image_splits/).
 *
 * @example
 * ```ts
 * const { queries, gallery } = loadCirr('/data/cirr-annotations', 'val'); // 4181 queries, 2297 images
 * ```
 * @throws VlkError ERR_VLK_INVALID_ARG (split), ERR_VLK_IO (a missing file), ERR_VLK_CORRUPT (a malformed file)
 */
export function loadCirr(dir: string, split: 'val' | 'test1' | 'train'): CirrSplit {
  if (typeof dir !== 'string') throw new VlkError('ERR_VLK_TYPE', `dir: expected a string, got ${describe(dir)}`);
  if (split !== 'val' && split !== 'test1' && split !== 'train') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `split: expected 'val', 'test1' or 'train', got ${describe(split)}`);
  }
  const capFile = join(dir, 'captions', `cap.rc2.${split}.json`);
  const splitFile = join(dir, 'image_splits', `split.rc2.${split}.json`);
  const caps = readJson(capFile);
  const images = readJson(splitFile);
  if (!Array.isArray(caps)) throw corrupt(capFile, 'top level', 'an array of queries', caps);
  if (!isRecord(images)) throw corrupt(splitFile, 'top level', 'an object name -> path', images);
  const queries = caps.map((q, i): CirrQuery => {
    const at = `query ${i}`;
    if (!isRecord(q)) throw corrupt(capFile, at, 'an object', q);
    const set = q.img_set;
    if (!isRecord(set) || !Array.isArray(set.members)) throw corrupt(capFile, `${at}.img_set`, '{ id, members }', set);
    if (typeof q.pairid !== 'number') throw corrupt(capFile, `${at}.pairid`, 'a number', q.pairid);
    if (typeof set.id !== 'number') throw corrupt(capFile, `${at}.img_set.id`, 'a number', set.id);
    const soft: Record<string, number> = {};
    if (q.target_soft !== undefined) {
      if (!isRecord(q.target_soft)) throw corrupt(capFile, `${at}.target_soft`, 'an object', q.target_soft);
      for (const [k, v] of Object.entries(q.target_soft)) {
        if (typeof v !== 'number') throw corrupt(capFile, `${at}.target_soft.${k}`, 'a number', v);
        soft[k] = v;
      }
    }
    return {
      pairId: q.pairid,
      reference: str(capFile, `${at}.reference`, q.reference),
      caption: str(capFile, `${at}.caption`, q.caption),
      target: q.target_hard === undefined ? null : str(capFile, `${at}.target_hard`, q.target_hard),
      targetSoft: soft,
      setId: set.id,
      members: set.members.map((m, j) => str(capFile, `${at}.img_set.members[${j}]`, m)),
    };
  });
  const gallery = Object.keys(images);
  const paths: Record<string, string> = {};
  for (const name of gallery) paths[name] = str(splitFile, name, images[name]);
  return { split, queries, gallery, images: paths };
}

/** One FashionIQ query. */
export interface FashionIqQuery {
  /** The reference image (`candidate` in the files); it stays in the gallery. */
  reference: string;
  /** null in the test split (hidden). */
  target: string | null;
  captions: [string, string];
  /**
   * The two relative captions joined as CLIP4Cir does: "<first stripped of '.?, ' at both ends,
   * first letter upper case and the rest lower case> and <second stripped>".
   */
  text: string;
}

/** A FashionIQ category split: its queries and its gallery (the image ids of image_splits). */
export interface FashionIqSplit {
  category: string;
  split: string;
  queries: FashionIqQuery[];
  gallery: string[];
}

// Python's str.strip('.?, ') and str.capitalize() (for the ASCII text of the captions).
function stripChars(s: string): string {
  return s.replace(/^[.?, ]+/, '').replace(/[.?, ]+$/, '');
}
function capitalize(s: string): string {
  return s.length === 0 ? s : s[0].toUpperCase() + s.slice(1).toLowerCase();
}

/**
 * Loads a FashionIQ category split ('dress' | 'shirt' | 'toptee', 'train' | 'val' | 'test').
 *
 * @example
 * ```ts
 * const dress = loadFashionIq('/data/fashioniq-annotations', 'dress', 'val'); // 2017 queries, 3817 images
 * dress.queries[0].text; // "Is shiny and silver with shorter sleeves and fit and flare"
 * ```
 * @throws VlkError ERR_VLK_INVALID_ARG (category, split), ERR_VLK_IO, ERR_VLK_CORRUPT
 */
export function loadFashionIq(dir: string, category: 'dress' | 'shirt' | 'toptee', split: 'train' | 'val' | 'test'): FashionIqSplit {
  if (typeof dir !== 'string') throw new VlkError('ERR_VLK_TYPE', `dir: expected a string, got ${describe(dir)}`);
  if (category !== 'dress' && category !== 'shirt' && category !== 'toptee') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `category: expected 'dress', 'shirt' or 'toptee', got ${describe(category)}`);
  }
  if (split !== 'train' && split !== 'val' && split !== 'test') {
    throw new VlkError('ERR_VLK_INVALID_ARG', `split: expected 'train', 'val' or 'test', got ${describe(split)}`);
  }
  const capFile = join(dir, 'captions', `cap.${category}.${split}.json`);
  const splitFile = join(dir, 'image_splits', `split.${category}.${split}.json`);
  const caps = readJson(capFile);
  const images = readJson(splitFile);
  if (!Array.isArray(caps)) throw corrupt(capFile, 'top level', 'an array of triplets', caps);
  if (!Array.isArray(images)) throw corrupt(splitFile, 'top level', 'an array of image ids', images);
  const queries = caps.map((q, i): FashionIqQuery => {
    const at = `triplet ${i}`;
    if (!isRecord(q)) throw corrupt(capFile, at, 'an object', q);
    if (!Array.isArray(q.captions) || q.captions.length !== 2) throw corrupt(capFile, `${at}.captions`, 'two strings', q.captions);
    const c0 = str(capFile, `${at}.captions[0]`, q.captions[0]);
    const c1 = str(capFile, `${at}.captions[1]`, q.captions[1]);
    return {
      reference: str(capFile, `${at}.candidate`, q.candidate),
      target: q.target === undefined ? null : str(capFile, `${at}.target`, q.target),
      captions: [c0, c1],
      text: `${capitalize(stripChars(c0))} and ${stripChars(c1)}`,
    };
  });
  return { category, split, queries, gallery: images.map((v, i) => str(splitFile, `image ${i}`, v)) };
}

/** An image of a GeneCIS template: a COCO val2017 id (object tasks), or a JSON key of the record. */
export type GenecisKey = number | string;

/** One GeneCIS template. */
export interface GenecisTemplate {
  condition: string;
  reference: GenecisKey;
  target: GenecisKey;
  gallery: GenecisKey[];
  /** `[target, ...gallery]`: the columns of the score matrix {@link genecis} takes (target at 0). */
  candidates: GenecisKey[];
}

// Object tasks name an image by { val_image_id }; the attribute tasks' records (image and box)
// have no single id, so the whole record, as JSON with sorted keys, names the crop.
function genecisKey(file: string, where: string, v: unknown): GenecisKey {
  if (!isRecord(v)) throw corrupt(file, where, 'an image record', v);
  if (typeof v.val_image_id === 'number') return v.val_image_id;
  return JSON.stringify(v, Object.keys(v).sort());
}

/**
 * Loads a GeneCIS task file (e.g. change_object.json, focus_object.json): templates with their
 * candidate list [target, ...gallery]. Images are keyed by COCO val2017 id for the object tasks.
 *
 * @example
 * ```ts
 * const templates = loadGenecis('/data/genecis-annotations/focus_object.json'); // 1960 x 15 candidates
 * ```
 * @throws VlkError ERR_VLK_IO, ERR_VLK_CORRUPT
 */
export function loadGenecis(file: string): GenecisTemplate[] {
  if (typeof file !== 'string') throw new VlkError('ERR_VLK_TYPE', `file: expected a string, got ${describe(file)}`);
  const list = readJson(file);
  if (!Array.isArray(list)) throw corrupt(file, 'top level', 'an array of templates', list);
  return list.map((t, i): GenecisTemplate => {
    const at = `template ${i}`;
    if (!isRecord(t)) throw corrupt(file, at, 'an object', t);
    if (!Array.isArray(t.gallery)) throw corrupt(file, `${at}.gallery`, 'an array', t.gallery);
    const target = genecisKey(file, `${at}.target`, t.target);
    const gallery = t.gallery.map((g, j) => genecisKey(file, `${at}.gallery[${j}]`, g));
    return {
      condition: str(file, `${at}.condition`, t.condition),
      reference: genecisKey(file, `${at}.reference`, t.reference),
      target,
      gallery,
      candidates: [target, ...gallery],
    };
  });
}
