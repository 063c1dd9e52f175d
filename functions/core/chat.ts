/**
 * The form chat channels render. Amazon Q Developer in chat applications (formerly AWS Chatbot) shows a
 * message published to a topic it subscribes to as a card when the message is its custom notification
 * event: `version` "1.0", `source` "custom", `content` (title, description, next steps) and `metadata`.
 * Its subscription to the topic is an HTTPS one, so the message is published with
 * `MessageStructure: 'json'`: the event for HTTPS subscribers, the readable text for e-mail and for
 * every other protocol (`default`).
 */
import { capLength, oneLine } from './text.js';

export interface ChatNotification {
  version: '1.0';
  source: 'custom';
  id?: string;
  content: {
    textType: 'client-markdown';
    title: string;
    description: string;
    nextSteps?: string[];
    keywords?: string[];
  };
  metadata?: {
    threadId?: string;
    summary?: string;
    eventType?: string;
    relatedResources?: string[];
    additionalContext?: Record<string, string>;
  };
}

/** A chat section holds about 3,000 characters (Slack's limit for a text block); the rest is in the e-mail. */
export const chatDescriptionLength = 2800;

/**
 * Text for a chat card's markdown: one line, and no character that chat markdown acts on to link,
 * mention or format (`<!channel>`, `[x](url)`, `*`, `_`, backticks), so that text from a finding or an
 * error cannot ping a channel or dress itself as a link.
 */
export function chatText(text: string, max = 300): string {
  return oneLine(text, max)
    .replace(/[<>]/g, (c) => (c === '<' ? '‹' : '›'))
    .replace(/[`*_~|[\]]/g, ' ')
    .replace(/&/g, '+');
}

/** The SNS message body (for `MessageStructure: 'json'`): the chat event for HTTPS, the text for the rest. */
export function structuredMessage(text: string, chat: ChatNotification): string {
  const card: ChatNotification = {
    ...chat,
    content: { ...chat.content, description: capLength(chat.content.description, chatDescriptionLength) },
  };
  return JSON.stringify({ default: text, email: text, https: JSON.stringify(card) });
}
