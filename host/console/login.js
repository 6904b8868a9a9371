// The login form keeps the view the operator asked for (the URL's #fragment, which
// browsers keep across the redirect to this page): after logging in, the console
// opens on it. Only the fragment is copied, into a hidden field; the host accepts
// only the console's view names.
const next = document.getElementById('next');
if (next) next.value = location.hash.slice(1);
