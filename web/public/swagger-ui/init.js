// Starts Swagger UI on /api/v2/docs (functions/app.ts) with the document named by the page's data-url.
(function () {
  var el = document.getElementById('swagger-ui');
  var url = (el && el.getAttribute('data-url')) || '/api/v2/openapi.json';
  // eslint-disable-next-line no-undef -- SwaggerUIBundle is the global of swagger-ui-bundle.js, loaded just before
  window.ui = SwaggerUIBundle({ url: url, dom_id: '#swagger-ui', deepLinking: true });
})();
