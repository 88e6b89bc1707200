/**
 * Text from an untrusted side (the guest's console, its stderr in an error's details, names it
 * chose) made safe to print on a terminal: line feeds and tabs stay, a carriage return stays
 * only before a line feed (serial consoles end lines with both), colour (SGR: ESC [ digits ; m)
 * stays, and every other control character is shown as \xNN, so no escape sequence reaches the
 * terminal: no OSC 52 clipboard write, no title, cursor or screen tricks. Pure.
 */
export function terminalText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m|\r\n|[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (m) =>
    m.length > 1 ? m : `\\x${m.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

/** One line of guest-chosen text (a name, a path) for a terminal: every control character shown as \xNN. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
