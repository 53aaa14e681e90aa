/** An API error on any page: the API's own message, never a blank page. */
export function ErrorBanner({ message, testid = "error-banner" }: { message: string; testid?: string }) {
  if (!message) return null;
  return (
    <div class="error" role="alert" data-testid={testid}>
      {message}
    </div>
  );
}
