"use strict";
/* The queue of recorded readings the server has not stored yet, kept in IndexedDB so that nothing is lost when
   the tab closes offline. A reading is written here (and the write committed) before the app says it is saved;
   it leaves the queue only once the server's receipt names it. Keys grow in the order readings were recorded,
   so getAll() gives them in that order and they are sent in it. */
const ReadingQueue = (() => {
  const NAME = "telemon-app";
  const STORE = "queue";

  function open() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(NAME, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "seq", autoIncrement: true });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  async function run(mode, work) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const transaction = db.transaction(STORE, mode);
      let result;
      const request = work(transaction.objectStore(STORE));
      if (request) request.onsuccess = () => { result = request.result; };
      transaction.oncomplete = () => { db.close(); resolve(result); };
      transaction.onerror = () => { db.close(); reject(transaction.error); };
      transaction.onabort = () => { db.close(); reject(transaction.error); };
    });
  }

  return {
    add: (entry) => run("readwrite", (store) => store.add(entry)),
    all: () => run("readonly", (store) => store.getAll()),
    remove: (seqs) => run("readwrite", (store) => { seqs.forEach((seq) => store.delete(seq)); return null; }),
    clear: () => run("readwrite", (store) => store.clear()),
  };
})();
