// Chat requests the estimate's and the bound's tests both count.

import type { ChatRequest } from '../../core/spec/vocabulary.ts';

/** A question about an image: one text part and one image part. */
export const IMAGE_QUESTION_TEXT = 'what is this';
export const IMAGE_QUESTION: ChatRequest = {
  model: 'm',
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: IMAGE_QUESTION_TEXT },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
      ],
    },
  ],
};
