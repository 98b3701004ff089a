/** A one-line, user-facing error about an input file; `kind` tells the cases apart (ImageFileError, VideoFileError). */
export class InputFileError<Kind extends string> extends Error {
  constructor(
    readonly kind: Kind,
    message: string,
  ) {
    super(message);
  }
}
