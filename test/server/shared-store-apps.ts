/** What both shared-store test files use: the fixture apps, one per kind, and a JSON GET that must answer 200. */
import { expect } from 'vitest';

export const REQUESTS = 400;
export const APPS = [
  ['python', 'test/fixtures/apps/shared-counter.py'],
  ['javascript', 'test/fixtures/apps/shared-counter.ts'],
] as const;

export async function getJson(url: string): Promise<unknown> {
  const response = await fetch(url);
  expect(response.status, `${url}: ${response.status}`).toBe(200);
  return response.json();
}
