/**
 * The little TwiML Vigil writes (https://www.twilio.com/docs/voice/twiml,
 * https://www.twilio.com/docs/messaging/twiml). Every piece of text and every attribute goes
 * through `xml`, so a resident's name with `&` or `<` cannot break (or inject into) the document.
 */
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

export const xml = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c]);

export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';

/** A messaging answer: one reply SMS, or none (`<Response/>`) when `text` is null. */
export const messageResponse = (text: string | null): string =>
  XML_DECLARATION + (text === null ? '<Response/>' : `<Response><Message>${xml(text)}</Message></Response>`);

/** A voice answer that speaks `text` and hangs up (the call ends when the document does). */
export const sayResponse = (text: string): string => `${XML_DECLARATION}<Response><Say>${xml(text)}</Say></Response>`;
