import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
// The styles ride in the script: nothing shows before it runs anyway, and a stylesheet request of its own would
// hold the script back until it arrived.
import css from './styles.css?inline';

const style = document.createElement('style');
style.textContent = css;
document.head.append(style);

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
