/** A text field of a submitted form ('' when absent). */
export function field(f: FormData, name: string): string {
  const v = f.get(name);
  return typeof v === 'string' ? v : '';
}
